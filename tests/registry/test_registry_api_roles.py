"""Role checks over real HTTP (uvicorn on a local socket): school scoping, read-only roles,
authentication failures — each refusal answered 401/403 and left in the audit log."""

from sqlalchemy import func, select
from urelief.registry.models import AuditEntry, Guardian, Incident, Subscriber
from urelief.registry.service import cli_actor


def _denied(world, username: str, action: str | None = None) -> list[AuditEntry]:
    with world.registry.db.Session() as s:
        stmt = select(AuditEntry).where(AuditEntry.username == username,
                                        AuditEntry.outcome == "denied")
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(s.scalars(stmt))


def test_school_admin_sees_only_own_school_subscribers(world, http):
    a = http("sa_a")
    listed = a.get("/api/subscribers").json()
    assert {p["pupil_ref"] for p in listed["items"]} == {"A-001", "A-002", "A-003"}
    assert listed["total"] == 3

    other = world.pupils["B-001"]
    r = a.get(f"/api/subscribers/{other['id']}")
    assert r.status_code == 403
    assert "another school" in r.json()["detail"]
    assert "Choi" not in r.text  # nothing of the child leaks in the refusal
    # Asking for the other school's list explicitly is refused too, not silently emptied.
    assert a.get("/api/subscribers", params={"school_id": world.schools["B"]["id"]}).status_code == 403
    assert a.get(f"/api/subscribers/{other['id']}/guardians").status_code == 403
    assert a.get(f"/api/subscribers/{other['id']}/consents").status_code == 403

    denied = _denied(world, "sa_a", "subscriber.read")
    assert [(d.object_id, d.school_id) for d in denied] == [(str(other["id"]), world.schools["B"]["id"])]

    own = a.get(f"/api/subscribers/{world.pupils['A-001']['id']}").json()
    assert [g["phone"] for g in own["guardians"]] == ["+821012345678", "+821022223333"]


def test_school_admin_sees_only_own_school_devices(world, http):
    a = http("sa_a")
    assert [d["id"] for d in a.get("/api/devices").json()["items"]] == [world.devices["A"]]
    b_dev = world.devices["B"]
    assert a.get(f"/api/devices/{b_dev}").status_code == 403
    assert a.get(f"/api/devices/0x{b_dev:08x}").status_code == 403
    r = a.patch(f"/api/devices/{b_dev}", json={"status": "retired"})
    assert r.status_code == 403
    assert http("admin").get(f"/api/devices/{b_dev}").json()["status"] == "provisioned"
    # Key material is never part of an answer.
    body = http("admin").get(f"/api/devices/{world.devices['A']}").json()
    assert not {k for k in body if "key" in k} - {"key_id"}


def test_school_admin_incident_scope(world, registry):
    """Incidents are served by the incidents API (another module) through `policy.scoped`;
    the scoping rule itself is checked here on real rows."""
    from urelief.registry import policy
    from urelief.registry.audit import Actor
    from urelief.registry.errors import Denied

    with registry.db.session() as s:
        for code in ("A", "B"):
            s.add(Incident(school_id=world.schools[code]["id"], device_id=world.devices[code]))
    sa_a = Actor(world.operators["sa_a"]["id"], "sa_a", "school_admin", world.schools["A"]["id"])
    disp = Actor(world.operators["disp"]["id"], "disp", "dispatcher")
    with registry.db.Session() as s:
        mine = s.scalars(policy.scoped(select(Incident), sa_a, Incident.school_id)).all()
        everyone = s.scalars(policy.scoped(select(Incident), disp, Incident.school_id)).all()
        assert {i.school_id for i in mine} == {world.schools["A"]["id"]}
        assert len(everyone) == 2
        b_incident = next(i for i in everyone if i.school_id == world.schools["B"]["id"])
    try:
        policy.check_read(sa_a, b_incident.school_id, "incident")
        raise AssertionError("school admin read another school's incident")
    except Denied:
        pass
    assert not policy.may_act_on_incidents(sa_a) and policy.may_act_on_incidents(disp)


def test_dispatcher_cannot_change_the_roster(world, http, registry):
    d = http("disp")
    pupil = world.pupils["A-001"]
    # Dispatchers read subscriber cards (they act on incidents) …
    assert d.get(f"/api/subscribers/{pupil['id']}").status_code == 200
    # … but every roster change is refused.
    school_a = world.schools["A"]["id"]
    attempts = [
        d.post(f"/api/schools/{school_a}/roster", content="pupil_ref,full_name\nX,Y\n",
               headers={"Content-Type": "text/csv"}),
        d.patch(f"/api/subscribers/{pupil['id']}", json={"full_name": "Changed"}),
        d.post("/api/subscribers", json={"school_id": school_a, "pupil_ref": "N", "full_name": "New"}),
        d.post(f"/api/subscribers/{pupil['id']}/guardians",
               json={"name": "Stranger", "phone": "+821000000000"}),
        d.delete(f"/api/guardians/{world.registry.get_subscriber(cli_actor(), pupil['id'])['guardians'][0]['id']}"),
        d.post(f"/api/subscribers/{pupil['id']}/consents", json={"given_by": "x", "scope": "location"}),
        d.post("/api/devices", json={"device_id": "0x00000001", "key_hex": "00" * 16}),
        d.post("/api/schools", json={"code": "C", "name": "C"}),
        d.post("/api/operators", json={"username": "evil", "role": "admin"}),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    with registry.db.Session() as s:
        assert s.get(Subscriber, pupil["id"]).full_name == "Kim Minji"
        assert s.scalar(select(func.count(Subscriber.id))) == 4
        assert s.scalar(select(func.count(Guardian.id))) == 5
    assert len(_denied(world, "disp")) == len(attempts)


def test_auditor_reads_but_cannot_write_and_school_admin_cannot_read_audit(world, http):
    aud = http("auditor")
    assert aud.get("/api/subscribers").json()["total"] == 4
    assert aud.patch(f"/api/subscribers/{world.pupils['A-001']['id']}",
                     json={"class_name": "9-9"}).status_code == 403
    assert aud.get("/api/audit").status_code == 200
    assert http("sa_a").get("/api/audit").status_code == 403
    assert http("disp").get("/api/audit").status_code == 403
    assert http("sa_a").get("/api/operators").status_code == 403


def test_school_admin_edits_own_school_only(world, http):
    a = http("sa_a")
    own, other = world.pupils["A-002"], world.pupils["B-001"]
    r = a.patch(f"/api/subscribers/{own['id']}", json={"responder_notes": "deaf: text only"})
    assert r.status_code == 200 and r.json()["responder_notes"] == "deaf: text only"
    r = a.patch(f"/api/subscribers/{own['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert a.patch(f"/api/subscribers/{own['id']}", json={"full_name": None}).status_code == 422
    assert a.patch(f"/api/subscribers/{other['id']}", json={"class_name": "1-1"}).status_code == 403
    r = a.post(f"/api/schools/{world.schools['B']['id']}/roster",
               content="pupil_ref,full_name\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 403


def test_authentication_failures(world, http, live_url, registry):
    import httpx

    assert http(None).get("/api/subscribers").status_code == 401
    bad = httpx.get(f"{live_url}/api/subscribers", headers={"Authorization": "Bearer urt_000000000000_" + "x" * 43})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    # A token with a valid key id but the wrong secret is rejected too.
    key_id = world.tokens["sa_a"].split("_")[1]
    forged = httpx.get(f"{live_url}/api/subscribers",
                       headers={"Authorization": f"Bearer urt_{key_id}_{'y' * 43}"})
    assert forged.status_code == 401
    # Disabling an operator revokes their tokens at once.
    assert http("sa_a").get("/api/auth/me").status_code == 200
    r = http("admin").patch(f"/api/operators/{world.operators['sa_a']['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert http("sa_a").get("/api/auth/me").status_code == 401
    with registry.db.Session() as s:
        failed = s.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "auth.failed"))
    assert failed == 4


def test_login_cookie_and_logout(world, live_url):
    import httpx

    with httpx.Client(base_url=live_url) as c:
        assert c.post("/api/auth/login", json={"username": "disp", "password": "nope-nope-nope"}).status_code == 401
        r = c.post("/api/auth/login", json={"username": "disp", "password": "disp-password-123"})
        assert r.status_code == 200 and r.json()["operator"]["role"] == "dispatcher"
        # The cookie alone authenticates (the dashboard's EventSource cannot send headers).
        assert c.get("/api/auth/me").json()["username"] == "disp"
        token = r.json()["token"]
        # A browser names the page's origin on a write (CSRF check: test_registry_signin).
        assert c.post("/api/auth/logout", headers={"Origin": live_url}).status_code == 204
        c.cookies.clear()
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_password_guessing_is_throttled(world, live_url, registry):
    """Guessing one operator's password from one address: after 5 wrong ones that address backs
    off for that username (even the right password waits there) — but the operator is never
    locked out: the right password from their own address works at once."""
    import httpx

    guesser = httpx.Client(base_url=live_url,
                           transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    with guesser as c:
        codes = [c.post("/api/auth/login", json={"username": "auditor", "password": f"guess-{i}"}
                        ).status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        # Even the right password is refused from this address while it backs off …
        right = {"username": "auditor", "password": "auditor-password-123"}
        assert c.post("/api/auth/login", json=right).status_code == 429
        # … but other operators are unaffected.
        other = {"username": "disp", "password": "disp-password-123"}
        assert c.post("/api/auth/login", json=other).status_code == 200
    # The auditor at their own desk is not locked out.
    assert httpx.post(f"{live_url}/api/auth/login", json=right).status_code == 200
    with registry.db.Session() as s:
        outcomes = s.scalars(select(AuditEntry.outcome).where(
            AuditEntry.action == "auth.login", AuditEntry.username == "auditor")).all()
    assert outcomes == ["denied"] * 5 + ["throttled"] * 2 + ["ok"]


def test_failed_sign_ins_are_rate_limited_per_source(world, http, live_url, registry):
    """One address keeps presenting bad tokens and guessing passwords: past its budget it gets
    429, the audit log holds one `throttled` row instead of a row per attempt, and no password is
    hashed. Good tokens from that address, and other addresses, still work."""
    import httpx
    from urelief.registry.signin import AUTH_FAIL_BURST

    flood = 30
    bad = {"Authorization": "Bearer urt_000000000000_" + "x" * 43}
    attacker = httpx.Client(base_url=live_url,
                            transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with attacker:
        codes = [attacker.get("/api/subscribers", headers=bad).status_code
                 for _ in range(AUTH_FAIL_BURST + flood)]
        # The budget refills one attempt per 3 s: a slow run may earn one or two more 401s.
        assert codes[:AUTH_FAIL_BURST] == [401] * AUTH_FAIL_BURST
        assert codes[-flood + 2:] == [429] * (flood - 2)
        assert set(codes) == {401, 429}
        r = attacker.get("/api/subscribers", headers=bad)
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        guess = {"username": "disp", "password": "disp-password-123"}  # even the right one
        assert attacker.post("/api/auth/login", json=guess).status_code == 429
        good = {"Authorization": f"Bearer {world.tokens['sa_a']}"}
        assert attacker.get("/api/auth/me", headers=good).status_code == 200
    # Another address is not held back by the flood.
    assert http(None).get("/api/auth/me").status_code == 401
    assert httpx.post(f"{live_url}/api/auth/login", json=guess).status_code == 200
    with registry.db.Session() as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail)
                         .where(AuditEntry.remote_addr == "127.0.0.2")).all()
    denied = [r for r in rows if r.outcome == "denied"]
    throttled = [r for r in rows if r.outcome == "throttled"]
    assert len(denied) == codes.count(401) and {r.action for r in denied} == {"auth.failed"}
    assert len(throttled) == 1 and throttled[0].action == "auth.failed"
    assert throttled[0].detail["refused"] == 1  # the next row, a minute on, counts the rest
    assert len(rows) == len(denied) + 1  # 30+ refused attempts, one row; the login left none


def test_directory_reads_by_role(world, http, live_url):
    assert [s["code"] for s in http("sa_b").get("/api/schools").json()["items"]] == ["B"]
    assert http("disp").get("/api/schools").json()["total"] == 2
    ops = http("auditor").get("/api/operators").json()
    assert {o["username"] for o in ops["items"]} == set(world.operators)
    assert all("password" not in k for o in ops["items"] for k in o)
    assert http("disp").get("/api/operators").status_code == 403
    # Only an admin makes operators; the token comes back once and works at once.
    r = http("admin").post("/api/operators", json={"username": "new.disp", "role": "dispatcher"})
    assert r.status_code == 201
    import httpx

    me = httpx.get(f"{live_url}/api/auth/me",
                   headers={"Authorization": f"Bearer {r.json()['token']}"}).json()
    assert me == {"operator_id": r.json()["operator"]["id"], "username": "new.disp",
                  "role": "dispatcher", "school_id": None}
