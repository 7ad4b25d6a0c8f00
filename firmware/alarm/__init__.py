"""The terminal's main job: a gesture becomes a sealed SOS, stored before any send, delivered by
UDP or SMS until the server acks it, confirmed to the child by silent haptics.
  report.py  the 32-byte report block from the last fix, cell, battery, time source (pure)
  outbox.py  persisted outbox on littlefs, retried until acked by counter (pure file logic)
  policy.py  the one place that decides: UDP or SMS, when to retry, follow-up tracking (pure)
  feedback.py  the alarm's state machine: idle -> raised -> sent -> seen -> dispatched (pure)
  transport.py  the modem as two channels (UDP link to the server, SMS to the gateway)
  radio.py   the modem's own GNSS in windows between uplinks (the one RF path, shared)
  ask.py     a dispatcher's question, answered by presses or timed out (pure)
  runner.py  thin task wiring gesture -> packet -> outbox -> transport -> ack -> haptics"""
