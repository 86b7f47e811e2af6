"""VoipNow UAPI ``POST /uapi/faxes/{userId}/{extension}`` against the real API process, Postgres and S3: the spec's
example request, one job per recipient sharing the stored files, the jobs in the Kazoo outgoing list of the token's
account, and each documented error code produced by its cause.
"""

from __future__ import annotations

import json

import httpx
import pytest
from minio import Minio

from tests.integration.kazoo_api import KazooApi, kazoo_api_fixture  # noqa: F401
from tests.integration.wire_types import VoipNowCreated, VoipNowError, decode

PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n"


def post(api: KazooApi, files: list[tuple[str, bytes]], request: object, user: str = "@me", token: str | None = None):
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files]
    if request is not None:
        parts.append(("request", (None, json.dumps(request) if not isinstance(request, str) else request)))
    return httpx.post(
        f"{api.url}/uapi/faxes/{user}/0003*210",
        headers={"Authorization": f"Bearer {token or api.a.auth_token}"},
        files=parts,
        timeout=30,
    )


def outgoing(api: KazooApi) -> dict[str, dict]:
    answer = api.call("GET", f"/v2/accounts/{api.a.account_id}/faxes/outgoing", api.a.auth_token)
    return {f["id"]: f for f in answer.json()["data"]}


EXAMPLE_BOUNDARY = "------325343636"


@pytest.mark.parametrize("scheme", ["Bearer", "token"])
def test_spec_example_request(kazoo_api: KazooApi, infra, scheme: str) -> None:
    """The example as written: a 'files' part with fax.txt, a 'request' part naming recipient 7778888; with the
    example's ``Authorization: Bearer <token>`` and the request model's ``Authorization: token <token>``.
    Caught: the request model's form answered 401."""
    boundary = "------325343636"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="/path/to/file/fax.txt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        "This is my fax\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="request"\r\n\r\n'
        '{\n    "recipients":["7778888"]\n}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    answer = httpx.post(
        f"{kazoo_api.url}/uapi/faxes/@me/0003*210",
        headers={
            "Authorization": f"{scheme} {kazoo_api.a.auth_token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        content=body,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    decode(created, VoipNowCreated)
    assert created["uid"] in outgoing(kazoo_api)
    [job] = kazoo_api.sql("SELECT int_id FROM fax_jobs WHERE id = $1::uuid", created["uid"])
    assert created["id"] == str(job["int_id"]), "the id is the fax's number, as the example's \"1\""
    job = kazoo_api.sql("SELECT to_number, from_number FROM fax_jobs WHERE id = $1::uuid", created["uid"])[0]
    assert (job["to_number"], job["from_number"]) == ("7778888", "0003*210")
    request = json.loads(
        kazoo_api.sql("SELECT request FROM fax_jobs WHERE id = $1::uuid", created["uid"])[0]["request"]
    )
    [key] = request["document"]["uploads"]
    s3 = Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)
    assert s3.get_object(infra.s3_bucket, key).read() == b"This is my fax"


def s3_keys(infra, prefix: str) -> set[str]:
    s3 = Minio(infra.s3_endpoint, access_key=infra.s3_access_key, secret_key=infra.s3_secret_key, secure=False)
    return {o.object_name for o in s3.list_objects(infra.s3_bucket, prefix=prefix, recursive=True)}


def test_one_job_per_recipient_sharing_every_file(kazoo_api: KazooApi, infra) -> None:
    """Both jobs name the same two stored files; they stay until the last job that names them is deleted."""
    before = set(outgoing(kazoo_api))
    answer = post(kazoo_api, [("a.pdf", PDF), ("b.txt", b"page two")], {"recipients": ["12025550100", "12025550101"]})
    assert answer.status_code == 200, answer.text
    new = {k: v for k, v in outgoing(kazoo_api).items() if k not in before}
    numbers = kazoo_api.sql("SELECT to_number FROM fax_jobs WHERE id = ANY($1::uuid[])", list(new))
    assert sorted(r["to_number"] for r in numbers) == ["12025550100", "12025550101"]
    rows = kazoo_api.sql("SELECT request FROM fax_jobs WHERE id = ANY($1::uuid[])", list(new))
    uploads = [json.loads(row["request"])["document"]["uploads"] for row in rows]
    assert uploads[0] == uploads[1] and len(uploads[0]) == 2
    shared = set(uploads[0])
    assert shared <= s3_keys(infra, f"shared/{kazoo_api.a.account_id}/")

    first, second = new
    path = f"/v2/accounts/{kazoo_api.a.account_id}/faxes/outgoing"
    assert kazoo_api.call("DELETE", f"{path}/{first}", kazoo_api.a.auth_token).status_code == 200
    assert shared <= s3_keys(infra, "shared/"), "the other recipient's job still needs the files"
    assert kazoo_api.call("DELETE", f"{path}/{second}", kazoo_api.a.auth_token).status_code == 200
    assert not shared & s3_keys(infra, "shared/"), "the last job gone, its files go too"


def test_nothing_to_send_is_204(kazoo_api: KazooApi) -> None:
    before = set(outgoing(kazoo_api))
    answer = post(kazoo_api, [], {"recipients": ["7778888"]})
    assert answer.status_code == 204 and answer.content == b""
    assert set(outgoing(kazoo_api)) == before


def test_error_codes_from_their_causes(kazoo_api: KazooApi) -> None:
    before = set(outgoing(kazoo_api))

    def code(answer: httpx.Response) -> tuple[int, str]:
        return answer.status_code, answer.json()["error"]["code"]

    assert code(post(kazoo_api, [("a.pdf", PDF)], {"recipients": []})) == (400, "fx_recipients_invalid")
    assert code(post(kazoo_api, [("a.pdf", PDF)], {"recipients": ["not a number"]})) == (400, "fx_recipients_invalid")
    assert code(post(kazoo_api, [("a.pdf", PDF)], None)) == (400, "fx_recipients_invalid")
    assert code(post(kazoo_api, [("a.pdf", PDF)], "{broken json")) == (400, "fx_recipients_invalid")
    assert code(post(kazoo_api, [("a.docx", b"PK\x03\x04")], {"recipients": ["7778888"]})) == (400, "fx_file_invalid")
    assert code(post(kazoo_api, [("a.pdf", b"")], {"recipients": ["7778888"]})) == (400, "fx_file_invalid")
    eleven = [(f"p{i}.pdf", PDF) for i in range(11)]  # FAX_VOIPNOW_MAX_FILES defaults to 10
    assert code(post(kazoo_api, eleven, {"recipients": ["7778888"]})) == (400, "fx_max_files_reached")
    assert post(kazoo_api, [("a.pdf", PDF)], {"recipients": ["7778888"]}, token="wrong").status_code == 401
    other = post(kazoo_api, [("a.pdf", PDF)], {"recipients": ["7778888"]}, user=kazoo_api.b.account_id)
    assert code(other) == (403, "forbidden")
    assert set(outgoing(kazoo_api)) == before  # nothing refused was queued


def test_internal_error_is_reported_and_queues_nothing(kazoo_api: KazooApi, infra) -> None:
    """The database refusing one recipient's job (a trigger of this test's own database raises) is
    internal_server_error: no recipient's job is queued and the files already put in S3 are removed again."""
    kazoo_api.sql(
        "CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.to_number = '12025550199' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$"
    )
    kazoo_api.sql("CREATE TRIGGER refuse_job BEFORE INSERT ON fax_jobs FOR EACH ROW EXECUTE FUNCTION refuse_job()")
    before_jobs = set(outgoing(kazoo_api))
    before_objects = s3_keys(infra, "jobs/") | s3_keys(infra, "shared/")
    try:
        answer = post(kazoo_api, [("a.pdf", PDF)], {"recipients": ["7778888", "12025550199"]})
    finally:
        kazoo_api.sql("DROP TRIGGER refuse_job ON fax_jobs")
        kazoo_api.sql("DROP FUNCTION refuse_job()")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "internal_server_error"
    assert set(outgoing(kazoo_api)) == before_jobs
    assert s3_keys(infra, "jobs/") | s3_keys(infra, "shared/") == before_objects


@pytest.mark.parametrize(
    "body",
    [
        b"no multipart here",
        b'--------325343636\r\nContent-Disposition: form-data; name="files"; filename="fax.txt"\r\n\r\nThis is',
        # The text's example as printed: its boundary lines do not match its header, "Content-Type;..." has no colon.
        b'-----325343636-----\r\nContent-Disposition:form-data; name="files"; filename="/path/to/file/fax.txt"\r\n'
        b"Content-Type;application/octet-stream\r\n\r\nThis is my fax\r\n------325343636\r\n"
        b'Content-Disposition:form-data; name="request";\r\n{"recipients":["7778888"]}\r\n------325343636\r\n',
    ],
)
def test_a_malformed_multipart_body_is_a_client_error_that_says_so(kazoo_api: KazooApi, body: bytes) -> None:
    """Caught: a body that is not the multipart it claims answered 400 internal_server_error, which tells the client
    nothing about what to fix. It is fx_file_invalid (the files could not be read), and nothing is queued."""
    before = set(outgoing(kazoo_api))
    answer = httpx.post(
        f"{kazoo_api.url}/uapi/faxes/@me/0003*210",
        headers={
            "Authorization": f"token {kazoo_api.a.auth_token}",
            "Content-Type": f"multipart/form-data; boundary={EXAMPLE_BOUNDARY}",
        },
        content=body,
        timeout=30,
    )
    error = decode(answer.json(), VoipNowError).error
    assert (answer.status_code, error.code) == (400, "fx_file_invalid"), answer.text
    assert "multipart" in error.message
    assert set(outgoing(kazoo_api)) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/uapi/faxes/@me/0003*210", 405), ("POST", "/uapi/no-such-call", 404), ("GET", "/uapi/faxes", 404)],
)
def test_every_uapi_path_answers_in_voipnows_error_shape(kazoo_api: KazooApi, method: str, path: str, status: int):
    answer = httpx.request(method, f"{kazoo_api.url}{path}", headers={"Authorization": "Bearer x"})
    assert answer.status_code == status
    decode(answer.json(), VoipNowError)
