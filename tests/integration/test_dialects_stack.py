"""Fax.to and VoipNow clients against the platform as ``make run`` starts it: every service, the SIP line, faxsim.

Every curl example of spec/faxto-rest-api.md runs as the spec writes it (transcribed here: the spec lives outside
the repository), with only its host and placeholders filled in, and answers its documented shape, decoded with the
types its example responses show (tests/integration/wire_types.py). The money is real: a fax faxsim receives is
charged, one to a busy line is given back, and both delivery receipts reach the callback of the API settings with
the fax_job_id the send answered. A number provisioned by the text's Python snippet is faxed by faxsim, dialled with
and without its '+': both faxes call back with the number as /numbers lists it, a PDF link that works, and are
listed under either form of the number with its did_id. A file's preview is the page as the fetcher renders it for
faxing. VoipNow's example request, with either form of its Authorization header, is faxed to faxsim and shows,
completed, in the Kazoo outbox of the token's account.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from PIL import Image

from tests.integration.documents import make_pdf
from tests.integration.stack import REPO, RunningStack, infra_env, running_stack
from tests.integration.wire_types import (
    FaxStatus,
    History,
    Inbox,
    Numbers,
    Provisioned,
    Sent,
    Uploaded,
    VoipNowCreated,
    decode,
)

# name -> the command line as the spec writes it. The DID-group example's "cityNamePattern=New York%" is the one
# change: curl refuses a URL with a space in it, so it is percent-encoded.
EXAMPLES = {
    "register": """curl  -d  '{"email":"USER_EMAIL", "password":"USER_PASSWORD"}' -H  'Content-Type: application/json'  -X POST 'https://fax.to/api/v2/user'""",
    "login": """curl  -d  '{"email":"USER_EMAIL", "password":"USER_PASSWORD"}' -H  'Content-Type: application/json'  -X POST 'https://fax.to/api/v2/user/login'""",
    "subuser": """curl  -d  '{"email":"SUBUSER_EMAIL", "password":"SUBUSER_PASSWORD"}' -H  'Content-Type: application/json'  -X POST 'https://fax.to/api/v2/subuser?api_key=API_KEY'""",
    "balance": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/balance?api_key=API_KEY'""",
    "send": """base_url='https://fax.to/api/v1'
action='/fax'
key='API_KEY'
fax_number='+441224459292'
document_id='112601'

curl -X POST "$base_url$action" \\
-d api_key=$key \\
-d fax_number=$fax_number \\
-d document_id="$document_id"
""",
    "cost": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/fax/{document_id}/costs?api_key=API_KEY&fax_number=+161242252602'""",
    "status": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/fax/{fax_job_id}/status?api_key=API_KEY'""",
    "history": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/fax-history?api_key=API_KEY'""",
    "upload_remote": """curl -F AddRemoteFile={REMOTE_FILE_URL} 'https://fax.to/api/v2/files?api_key=API_KEY'""",
    "upload_local": """curl  -F file=@{LOCAL_FILE_PATH} 'https://fax.to/api/v2/files?api_key=API_KEY'""",
    "file_clean": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/file-clean?document_id=DOCUMENT_ID&api_key=API_KEY'""",
    "preview": """curl -X GET --header 'Content-Type: application/json' 'http://fax.to/api/v2/file-generate-preview?document_id=DOCUMENT_ID&api_key=API_KEY'""",
    "files": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/files?api_key=API_KEY'""",
    "delete_file": """curl -X DELETE --header 'Content-Type: application/json' 'https://fax.to/api/v2/files/{document_id}?api_key=API_KEY'""",
    "provision": """curl -X POST --header 'Content-Type: application/json' 'https://fax.to/api/v2/provision-numbers?api_key=API_KEY'""",
    "numbers": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/numbers?api_key=API_KEY'""",
    "incoming": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/incoming-faxes?api_key=API_KEY'""",
    "incoming_recipient": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/incoming-faxes/{recipient}?api_key=API_KEY'""",
    "countries": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/countries?api_key=API_KEY'""",
    "states": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/states/{COUNTRY_CODE}?api_key=API_KEY'""",
    "areacodes": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/areacodes/{COUNTRY_CODE}/{STATE_ID}?api_key=API_KEY'""",
    "didgroups": """curl -X GET --header 'Content-Type: application/json' 'https://fax.to/api/v2/countries/{COUNTRY_CODE}/didgroups?api_key=API_KEY&didGroupIds=12,34,67&stateId=12&cityNamePattern=New%20York%25&areaCode=204'""",
}  # fmt: skip

# The keys of each example response in the spec (the top level, and of the first element of its list).
DOCUMENT_KEYS = {"filename", "filename_uploaded", "orig_filename", "file_extension", "total_pages", "filesize",
                 "preview_in_storage", "preview_file", "preview_image", "s3", "user_id", "updated_at", "created_at",
                 "id"}  # fmt: skip
INBOX_KEYS = {"id", "did_id", "filename", "filesize", "number", "sender", "total_pages", "created_at", "preview_file",
              "file_url"}  # fmt: skip
PAGINATION_KEYS = {"total", "count", "per_page", "current_page", "total_pages", "links"}
SHAPES: dict[str, tuple[set[str], str | None, set[str]]] = {
    "register": ({"status", "api_key"}, None, set()),
    "login": ({"status", "api_key"}, None, set()),
    "subuser": ({"status", "api_key"}, None, set()),
    "balance": ({"status", "balance"}, None, set()),
    "send": ({"status", "fax_job_id", "user_cash_balance", "cost"}, None, set()),
    "cost": ({"status", "cost"}, None, set()),
    "status": ({"status", "message", "user_cash_balance"}, None, set()),
    "history": ({"status", "history"}, "history", {"id", "created", "document_id", "document", "recipient", "status"}),
    "upload_remote": ({"status", "document_id", "document"}, None, set()),
    "upload_local": ({"status", "document_id", "document"}, None, set()),
    "file_clean": ({"status", "server_document_id", "team_user_id"} | DOCUMENT_KEYS, None, set()),
    "preview": ({"status", "url"}, None, set()),
    "files": (set(), "", {"id", "filename", "pages", "size", "uploaded"}),
    "delete_file": ({"status"}, None, set()),
    "provision": ({"status", "message", "data"}, None, set()),
    "numbers": ({"status", "numbers", "meta"}, "numbers", {"id", "order_reference", "country_code", "country",
                 "city_name", "area_code", "did_group_id", "did_number", "expiration_date", "status"}),
    "incoming": ({"status", "inbox", "meta"}, "inbox", INBOX_KEYS),
    "incoming_recipient": ({"status", "inbox", "meta"}, "inbox", INBOX_KEYS),
    "countries": ({"status", "data"}, "data", {"country", "slug", "a2_code", "dial_code"}),
    "states": ({"status", "states"}, "states", {"id", "name", "code"}),
    "areacodes": ({"status", "areacodes"}, "areacodes", {"country_code", "state_id", "area_code"}),
    "didgroups": ({"status", "data"}, None, set()),
}  # fmt: skip
# The examples whose answers have a type in wire_types (the others are checked by their keys only).
TYPES: dict[str, type] = {"send": Sent, "status": FaxStatus, "history": History, "upload_remote": Uploaded,
                          "upload_local": Uploaded, "provision": Provisioned, "numbers": Numbers, "incoming": Inbox,
                          "incoming_recipient": Inbox}  # fmt: skip
# The text's Python snippet for provisioning a number in a DID group, in Python 3 (urllib.urlopen became
# urllib.request.urlopen; without data it is a GET, as in Python 2), host and placeholders filled in as for curl.
PROVISION_SNIPPET = """import urllib.request, urllib.parse
params = {
    'api_key': 'API_KEY'
}

url = 'https://fax.to/api/v2/countries/didgroups/{did_group_id}/provision?' + urllib.parse.urlencode(params)
response = urllib.request.urlopen(url)
print(response.read().decode())
"""
PROVISIONED_KEYS = {"id", "didid", "did_group_id", "country_code", "city_name", "area_code", "number", "type",
                    "trunk_id"}  # fmt: skip
SENT_TO = "+441224459292"  # the send example's number: faxsim answers it as a fax machine
BUSY = "+12025550486"  # faxsim's dial plan: ...0486 is busy
UK_PER_PAGE = 0.07  # rates.csv, prefix 44
US_PER_PAGE = 0.05  # rates.csv, prefix 1


@pytest.fixture(scope="module")
def stack(infra, document_server: str) -> Iterator[RunningStack]:
    env = {
        **infra_env(infra, bucket=f"faxto-{uuid.uuid4().hex[:8]}"),
        "FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",  # AddRemoteFile's server and the callback receiver
        "FAX_LINE": "sip",
        "FAX_RING_TIMEOUT": "4",
        "FAX_RETRY_DELAY": "1",
        "FAX_RETRY_DELAY_BUSY": "1",
        "FAX_CALLBACK_RETRY_INTERVAL": "1",
    }
    with running_stack(REPO / ".devstack" / f"test-faxto-{uuid.uuid4().hex[:8]}", env) as running:
        running.credentials["FAX_DATABASE_URL"] = env["FAX_DATABASE_URL"]
        yield running


@pytest.fixture(scope="module")
def callbacks() -> Iterator[tuple[list[tuple[str, str, dict[str, str]]], str]]:
    """An HTTP endpoint on loopback recording every POST (path, content type, url-encoded fields); answers 200."""
    received: list[tuple[str, str, dict[str, str]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            received.append((self.path, self.headers.get("Content-Type", ""), fields))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_example(stack: RunningStack, name: str, values: dict[str, str]) -> tuple[int, Any]:
    """Run example ``name`` with bash and curl, host and placeholders filled in; its HTTP status and JSON answer."""
    command = EXAMPLES[name].replace("https://fax.to", stack.api_url).replace("http://fax.to", stack.api_url)
    for placeholder, value in values.items():
        command = command.replace(placeholder, value)
    out = subprocess.run(
        ["bash", "-c", command.rstrip() + " -s -w '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(body)


def assert_shape(name: str, answer: Any) -> None:
    if name in TYPES:
        decode(answer, TYPES[name])
    top, listed, element = SHAPES[name]
    if isinstance(answer, dict):
        assert top <= set(answer), f"{name}: missing {top - set(answer)}"
        assert answer.get("status") in ("success", "executed"), (name, answer)
    items = answer if listed == "" else answer.get(listed) if listed else None
    if items:
        assert element <= set(items[0]), f"{name}: an element misses {element - set(items[0])}"


def wait_for(predicate, timeout: float = 180, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def credit(stack: RunningStack, email: str, amount: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fax_api.faxto.credit", email, amount],
        env={**os.environ, "FAX_DATABASE_URL": stack.credentials["FAX_DATABASE_URL"]},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_curl_example_answers_its_documented_shape_and_money_follows_the_calls(
    stack: RunningStack, document_server: str, callbacks, tmp_path: Path
) -> None:
    received, callback_base = callbacks
    ran: list[str] = []

    def example(name: str, **values: str) -> Any:
        code, answer = run_example(stack, name, values)
        assert code == 200, (name, code, answer)
        assert_shape(name, answer)
        ran.append(name)
        return answer

    user = {"USER_EMAIL": f"owner-{uuid.uuid4().hex[:8]}@example.com", "USER_PASSWORD": "s3cret-pass"}
    key = example("register", **user)["api_key"]
    assert example("login", **user)["api_key"] == key
    sub = {"SUBUSER_EMAIL": f"sub-{uuid.uuid4().hex[:8]}@example.com", "SUBUSER_PASSWORD": "sub-pass-1",
           "API_KEY": key}  # fmt: skip
    sub_key = example("subuser", **sub)["api_key"]
    assert example("balance", API_KEY=key)["balance"] == 0
    credit(stack, user["USER_EMAIL"], "5.00")  # the operator tops the account up
    assert example("balance", API_KEY=sub_key)["balance"] == 5.0  # one account, one balance
    settings = {"api_key": key, "callback_url": f"{callback_base}/fax-events"}
    assert httpx.post(f"{stack.api_url}/api/v2/settings", data=settings).status_code == 200

    remote = example("upload_remote", **{"{REMOTE_FILE_URL}": f"{document_server}/fax.pdf", "API_KEY": key})
    assert set(remote["document"]) >= DOCUMENT_KEYS
    # The text's names: <orig_filename>.tiff, and a preview named from the upload on (the fetcher draws it then).
    named = remote["document"]
    assert (named["filename"], named["preview_file"]) == (
        f"{named['orig_filename']}.tiff",
        f"{named['orig_filename']}.preview.png",
    )
    local_pdf = make_pdf(tmp_path / "local.pdf")
    local = example("upload_local", **{"{LOCAL_FILE_PATH}": str(local_pdf), "API_KEY": key})
    document_id = str(local["document_id"])
    preview = example("preview", DOCUMENT_ID=document_id, API_KEY=key)
    with Image.open(io.BytesIO(httpx.get(preview["url"]).content)) as page:
        assert page.format == "PNG" and page.width == 864 and page.convert("L").getextrema()[0] < 128
    clean = example("file_clean", DOCUMENT_ID=document_id, API_KEY=key)
    assert (clean["total_pages"], clean["preview_in_storage"]) == (2, 1)  # the fetcher's count, rendered
    files = example("files", API_KEY=key)
    assert {f["id"] for f in files} == {remote["document_id"], local["document_id"]}
    # The cost example prices the file to a US number; the send example sends it to the UK.
    assert example("cost", **{"{document_id}": document_id, "API_KEY": key})["cost"] == round(2 * US_PER_PAGE, 4)

    sent = example("send", API_KEY=key, **{"112601": document_id})
    cost = sent["cost"]
    assert sent["status"] == "executed" and cost == round(2 * UK_PER_PAGE, 4)
    # The text's Encoding: "a POST or GET call".
    busy = httpx.get(
        f"{stack.api_url}/api/v2/fax", params={"api_key": key, "fax_number": BUSY, "document_id": document_id}
    ).json()
    assert decode(busy, Sent).status == "executed", busy

    def status_of(job_id: int) -> str:
        answer = example("status", **{"{fax_job_id}": str(job_id), "API_KEY": key})
        return answer["message"] if not answer["message"].startswith(("Queued", "Sending")) else ""

    assert wait_for(lambda: status_of(sent["fax_job_id"]), what="the fax to faxsim") == "Sent! Fax Has Been Answered."
    assert wait_for(lambda: status_of(busy["fax_job_id"]), what="the busy fax").startswith("Failed")
    # Charged for the fax that was delivered, never for the one that failed.
    assert example("balance", API_KEY=key)["balance"] == round(5.0 - cost, 4)
    history = {h["id"]: h["status"] for h in example("history", API_KEY=key)["history"]}
    assert history == {sent["fax_job_id"]: "success", busy["fax_job_id"]: "failed"}
    receipts = wait_for(lambda: len(received) >= 2 and received, what="both delivery receipts")
    # Each receipt names its fax by the fax_job_id its send answered.
    by_job = {fields["fax_job_id"]: fields for path, _, fields in receipts if path == "/fax-events"}
    sent_receipt, busy_receipt = by_job[str(sent["fax_job_id"])], by_job[str(busy["fax_job_id"])]
    assert (sent_receipt["status"], sent_receipt["msg_code"]) == ("success", "ok")
    assert (busy_receipt["status"], busy_receipt["msg_code"]) == ("failed", "busy")

    assert example("delete_file", **{"{document_id}": str(remote["document_id"]), "API_KEY": key}) == {
        "status": "success"
    }
    provisioned = example("provision", API_KEY=key)["data"]
    assert set(provisioned) >= PROVISIONED_KEYS
    numbers = example("numbers", API_KEY=key)
    assert [n["did_number"] for n in numbers["numbers"]] == [provisioned["number"]]
    assert set(numbers["meta"]["pagination"]) >= PAGINATION_KEYS
    example("incoming", API_KEY=key)
    example("incoming_recipient", **{"{recipient}": provisioned["number"].lstrip("+"), "API_KEY": key})
    assert {"country": "CANADA", "slug": "CANADA", "a2_code": "CAN", "dial_code": 1} in example(
        "countries", API_KEY=key
    )["data"]
    assert example("states", **{"{COUNTRY_CODE}": "USA", "API_KEY": key})["states"][0]["code"] == "AL"
    areas = example("areacodes", **{"{COUNTRY_CODE}": "USA", "{STATE_ID}": "1", "API_KEY": key})["areacodes"]
    assert {a["area_code"] for a in areas} == {"205", "251"}
    example("didgroups", **{"{COUNTRY_CODE}": "CAN", "API_KEY": key})
    assert set(ran) == set(EXAMPLES), f"examples not run: {set(EXAMPLES) - set(ran)}"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _faxsim_send(stack: RunningStack, document: Path, to: str, media_ports: str) -> subprocess.Popen[str]:
    """faxsim faxes ``document`` to ``to`` over SIP, calling the transmitter as a trunk would."""
    sip_port = int(stack.api_url.rsplit(":", 1)[1]) + 6  # running_stack: the transmitter's SIP port
    return subprocess.Popen(
        [
            sys.executable, "-m", "fax_faxsim", "send", str(document), "--to", to, "--from", "+15557770002",
            "--target", f"127.0.0.1:{sip_port}", "--sip", f"127.0.0.1:{_free_udp_port()}",
            "--media-ports", media_ports,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )  # fmt: skip


def test_a_provisioned_number_dialled_with_or_without_plus_is_one_number(
    stack: RunningStack, callbacks, tmp_path: Path
) -> None:
    """A user provisions a number with the text's Python snippet and sets its callback in the API settings;
    faxsim faxes the number over SIP twice, dialling it as trunks deliver numbers (12048134700) and with its '+'.
    Both receive callbacks arrive with Fax.to's fields, ``to`` the number as /numbers lists it, and a file link
    that serves the PDF; both faxes are listed under either form of the number, with its did_id.

    Caught: the fax dialled without '+' was stored as 12048134700 with did_id null, listed under neither form, and
    called back with to=12048134700."""
    received, base = callbacks
    api = stack.api_url
    email = f"rx-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{api}/api/v2/user", json={"email": email, "password": "s3cret-pass"}).json()["api_key"]
    assert httpx.post(f"{api}/api/v2/settings", data={"api_key": key, "callback_url": f"{base}/fax-in"}).is_success
    snippet = PROVISION_SNIPPET.replace("https://fax.to", api).replace("API_KEY", key)
    ran = subprocess.run(
        [sys.executable, "-c", snippet.replace("{did_group_id}", "67")], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    provisioned = decode(json.loads(ran.stdout), Provisioned).data
    number = provisioned.number
    assert (provisioned.did_group_id, provisioned.area_code) == (67, "204") and number.startswith("+1204")
    listed = decode(httpx.get(f"{api}/api/v2/numbers", params={"api_key": key}).json(), Numbers).numbers
    assert [n.did_number for n in listed] == [number]

    document = make_pdf(tmp_path / "to-faxto.pdf")
    senders = [
        _faxsim_send(stack, document, number.lstrip("+"), "47200-47299"),
        _faxsim_send(stack, document, number, "47300-47399"),
    ]
    for sender in senders:
        output, _ = sender.communicate(timeout=240)
        assert sender.returncode == 0, output

    def both_callbacks() -> list[tuple[str, str, dict[str, str]]] | None:
        found = [r for r in received if r[0] == "/fax-in"]
        return found if len(found) >= 2 else None

    calls = wait_for(both_callbacks, timeout=60, what="both receive callbacks")
    for _, content_type, fields in calls:
        assert content_type == "application/x-www-form-urlencoded"
        assert set(fields) == {"uuid", "from", "to", "time", "file", "rsid", "speed", "duration", "ecm", "pages",
                               "compression", "delivery_id"}  # fmt: skip
        assert (fields["from"], fields["to"], fields["pages"]) == ("+15557770002", number, "2")
        assert fields["rsid"] == "FAXSIM" and int(fields["speed"]) >= 2400
        assert fields["compression"] in ("MH", "MR", "MMR")
        assert int(fields["duration"]) > 0 and fields["ecm"] in ("0", "1")
        pdf = httpx.get(fields["file"], timeout=30)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.count(b"/Type /Page") - pdf.content.count(b"/Type /Pages") == 2
    assert len(calls) == 2

    digits = number.lstrip("+")
    inboxes = []
    for recipient in (digits, f"%2B{digits}"):
        inbox = decode(httpx.get(f"{api}/api/v2/incoming-faxes/{recipient}", params={"api_key": key}).json(), Inbox)
        assert {(f.number, f.did_id, f.total_pages) for f in inbox.inbox} == {(number, provisioned.id, 2)}
        assert len(inbox.inbox) == 2 and inbox.inbox[0].filesize.endswith(("B", "KB"))
        inboxes.append([f.id for f in inbox.inbox])
    assert inboxes[0] == inboxes[1]
    for name, values in (("incoming", {}), ("incoming_recipient", {"{recipient}": digits})):
        code, answer = run_example(stack, name, {**values, "API_KEY": key})  # the examples, with faxes to list
        assert code == 200 and len(answer["inbox"]) == 2
        assert_shape(name, answer)
    forged = calls[0][2]["file"].replace("signature=", "signature=0")
    assert httpx.get(forged).status_code == 403


@pytest.mark.parametrize("scheme", ["Bearer", "token"])
def test_the_voipnow_example_is_faxed_and_completes_in_the_kazoo_outbox(stack: RunningStack, scheme: str) -> None:
    """The spec's example request, with a well-formed multipart body (the spec's boundary lines do not match its
    header): fax.txt to 7778888 from extension 0003*210, with the demo tenant's token as the example sends it
    (``Authorization: Bearer <token>``) and as the request model shows it (``Authorization: token <token>``)."""
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
    token = stack.credentials["FAX_AUTH_TOKEN"]
    answer = httpx.post(
        f"{stack.api_url}/uapi/faxes/@me/0003*210",
        headers={"Authorization": f"{scheme} {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    created = decode(answer.json(), VoipNowCreated)
    outbox = f"{stack.api_url}/v2/accounts/{stack.credentials['FAX_ACCOUNT_ID']}/faxes/outbox/{created.uid}"

    def finished() -> dict | None:
        response = httpx.get(outbox, headers={"X-Auth-Token": token})
        data = response.json()["data"] if response.status_code == 200 else {}
        return data if data.get("status") in ("completed", "failed") else None

    fax = wait_for(finished, what="the VoipNow fax")
    assert (fax["status"], fax["to_number"], fax["from_number"]) == ("completed", "7778888", "0003*210"), fax
