"""Many terminals at once (`urelief sim fleet`): each with its own fault, every alert reaches
the police server and its ACK is felt, and the report says how."""

from click.testing import CliRunner
from urelief.cli import main
from urelief.sim.fleet import run_fleet


def test_every_alert_of_a_faulty_fleet_is_delivered(tmp_path, built_firmware):
    faults = ["none", "no-data", "modem-hang", "power-cut"]
    rep = run_fleet(len(faults), faults, tmp_path, echo=print)
    rows = {r["fault"]: r for r in rep["rows"]}
    assert all("error" not in r for r in rep["rows"]), [r.get("trace") for r in rep["rows"]]
    assert rep["delivered"] == rep["incidents"] == 4
    assert rows["none"]["transport"] == "udp" and rows["no-data"]["transport"] == "sms"
    assert rows["power-cut"]["boots"] == 2  # sent from the outbox after the power came back
    assert len({r["incident"]["id"] for r in rep["rows"]}) == 4  # one incident per device
    assert all(r["incident"]["has_position"] for r in rep["rows"])
    assert rep["by_fault"]["none"]["press_to_vibration_ms_median"] < rows["power-cut"]["press_to_vibration_ms"]


def test_the_cli_refuses_an_unknown_fault():
    r = CliRunner().invoke(main, ["sim", "fleet", "--faults", "none,gremlins"])
    assert r.exit_code == 2 and "gremlins" in r.output


def test_a_failed_device_says_why_and_its_logs_outlive_the_run(tmp_path, built_firmware, monkeypatch):
    from urelief.sim import fleet

    monkeypatch.setattr(fleet, "ACK_WAIT_MS", 1)  # no time for the ACK: the alert must fail
    rep = run_fleet(1, ["none"], tmp_path / "work", echo=print, seed=7, logs=tmp_path / "logs")
    row = rep["rows"][0]
    assert not row["delivered"] and row["reason"], row
    assert rep["seed"] == 7 and rep["logs"] == str(tmp_path / "logs")
    saved = tmp_path / "logs" / "dev000"
    assert "urelief: boot" in (saved / "console.log").read_text()
    assert "AT" in (saved / "at.log").read_text()
    assert (tmp_path / "logs" / "server.log").stat().st_size > 0
