"""Validation answers 422 naming the field; pagination pages; conflicts answer 409; the
OpenAPI document lists the registry routes."""

import os

from urelief.registry.service import cli_actor


def test_validation_errors_name_the_field(world, http):
    adm = http("admin")
    r = adm.post("/api/operators", json={"username": "has space", "role": "boss"})
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert {("body", "username"), ("body", "role")} <= locs
    r = adm.post("/api/operators", json={"username": "lonely", "role": "school_admin"})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "school", "message": "a school admin needs a school"}]
    r = adm.post(f"/api/subscribers/{world.pupils['A-001']['id']}/guardians",
                 json={"name": "Grandma", "phone": "010 1234"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "phone"
    r = adm.post(f"/api/subscribers/{world.pupils['A-001']['id']}/consents",
                 json={"given_by": "Kim Sora", "scope": "everything"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope"
    assert adm.get("/api/subscribers", params={"limit": 0}).status_code == 422
    assert adm.get("/api/subscribers", params={"limit": 501}).status_code == 422
    assert adm.post("/api/schools", json={"code": "A", "name": "dup"}).status_code == 409
    assert adm.get("/api/devices/0xZZ").status_code == 422
    assert adm.get("/api/subscribers/999999").status_code == 404
    r = adm.post("/api/schools", json={"code": "Q", "name": "Q", "extra": 1})
    assert r.status_code == 422  # unknown fields are refused, not ignored


def test_pagination_walks_every_row_once(world, http):
    adm = http("admin")
    seen, offset = [], 0
    while True:
        page = adm.get("/api/subscribers", params={"offset": offset, "limit": 3}).json()
        assert page["total"] == 4 and page["limit"] == 3
        if not page["items"]:
            break
        seen += [p["id"] for p in page["items"]]
        offset += 3
    assert sorted(seen) == sorted(p["id"] for p in world.pupils.values())
    assert len(seen) == len(set(seen))


def test_device_registration_over_http_and_duplicate(world, http, registry):
    a = http("sa_a")
    key = os.urandom(16)
    body = {"device_id": "0x0000beef", "key_hex": key.hex(), "board": "esp32s3-sim7080",
            "subscriber_id": world.pupils["A-002"]["id"]}
    r = a.post("/api/devices", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == 0xBEEF and r.json()["school_id"] == world.schools["A"]["id"]
    assert registry.device_key(0xBEEF) == key
    assert a.post("/api/devices", json=body).status_code == 409
    # Re-provisioning with replace re-keys (same key id: the old key is gone at once).
    new_key = os.urandom(16)
    r = a.post("/api/devices", json=body | {"key_hex": new_key.hex(), "replace": True})
    assert r.status_code == 201 and registry.device_key(0xBEEF) == new_key
    # A school admin cannot register a device to another school's pupil.
    r = a.post("/api/devices", json=body | {"device_id": "0x0000f00d",
                                            "subscriber_id": world.pupils["B-001"]["id"]})
    assert r.status_code == 403
    card = registry.get_subscriber(cli_actor(), world.pupils["A-002"]["id"])
    assert [d["hex_id"] for d in card["devices"]] == ["0x0000beef"]


def test_openapi_lists_registry_routes(live_url):
    import httpx

    doc = httpx.get(f"{live_url}/openapi.json").json()
    for path in ("/api/subscribers", "/api/devices", "/api/audit", "/api/auth/login",
                 "/api/schools/{school_id}/roster", "/api/subscribers/{subscriber_id}/consents"):
        assert path in doc["paths"], path
    assert "text/csv" in doc["paths"]["/api/schools/{school_id}/roster"]["post"]["requestBody"]["content"]


def test_consent_must_name_a_guardian_of_the_same_pupil(world, http, registry):
    adm = http("admin")
    other_guardian = registry.get_subscriber(cli_actor(), world.pupils["B-001"]["id"])["guardians"][0]
    r = adm.post(f"/api/subscribers/{world.pupils['A-001']['id']}/consents",
                 json={"given_by": "Choi Mina", "scope": "location",
                       "guardian_id": other_guardian["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "guardian_id"
    own = registry.get_subscriber(cli_actor(), world.pupils["A-001"]["id"])["guardians"][0]
    r = adm.post(f"/api/subscribers/{world.pupils['A-001']['id']}/consents",
                 json={"given_by": own["name"], "scope": "location", "guardian_id": own["id"]})
    assert r.status_code == 201 and r.json()["guardian_id"] == own["id"]
    listed = adm.get(f"/api/subscribers/{world.pupils['A-001']['id']}/consents").json()
    assert listed["total"] == 4 and {c["scope"] for c in listed["items"]} == {
        "registry", "location", "guardian_sms"}
