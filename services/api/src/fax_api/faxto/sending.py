"""A Fax.to send: the document (uploaded in the call or earlier) checked and priced, then the job submitted with its
cost reserved in the same transaction (``billing.submit_billed_job``)."""

from __future__ import annotations

from fax_api.faxto import rules, views
from fax_api.faxto.billing import InsufficientBalance, submit_billed_job
from fax_api.faxto.dependencies import FaxtoCall
from fax_api.faxto.rows import SentFax
from fax_api.faxto.store import FaxtoStore
from fax_api.faxto.uploads import keep_upload
from fax_api.web.callback_urls import check_faxto_callback_url
from fax_api.web.faxto import FaxtoError
from fax_api.web.injection import Injected
from fax_jobs import JobStore
from fax_runtime.network_guard import NetworkGuard


class FaxSender:
    def __init__(self, faxto: FaxtoStore, jobs: JobStore, guard: NetworkGuard) -> None:
        self._faxto = faxto
        self._jobs = jobs
        self._guard = guard

    async def send(self, call: FaxtoCall) -> SentFax:
        """Send the call's ``document_id`` (or its uploaded ``file``) to its ``fax_number``."""
        user, params = call.user, call.values
        number = rules.fax_number(params)
        if "file" in call.files:
            document = await keep_upload(self._faxto, user, call.files["file"])
        else:
            found = await self._faxto.document(user.account_id, rules.document_id(params.get("document_id")))
            if found is None:
                raise FaxtoError(404, "Document not found")
            document = found
        body = await self._faxto.document_bytes(rules.faxable(document))
        if body is None:
            raise FaxtoError(404, "The document's file is gone")
        tsi = rules.tsi_number(params)
        cost = rules.send_cost(number, document.total_pages)
        # The send's own callback_url, else the one in the account's API settings.
        callback_url = (
            await check_faxto_callback_url(self._guard, params)
            if "callback_url" in params
            else await self._faxto.callback_url(user.account_id)
        )
        request = rules.send_request(number, document, user, tsi, callback_url)
        try:
            job, left = await submit_billed_job(
                self._jobs, user.account_id, request, [(body, document.content_type)], cost
            )
        except InsufficientBalance as exc:
            raise FaxtoError(
                402,
                f"Insufficient balance: this fax costs {views.money(exc.cost)}, "
                f"the balance is {views.money(exc.balance)}",
            ) from None
        if rules.wants_file_deleted(params):
            # The job holds its own copy (jobs/<id>/upload-0), so the document can go at once.
            await self._faxto.delete_document(user.account_id, document.id)
        return SentFax(job=job, cost=cost, balance_left=left)


def fax_sender(faxto: Injected[FaxtoStore], jobs: Injected[JobStore], guard: Injected[NetworkGuard]) -> FaxSender:
    """The ``sender`` dependency of the send handlers."""
    return FaxSender(faxto, jobs, guard)
