"""Postgres and S3 behind the Fax.to dialect: users and keys, documents, balance, history, received faxes, numbers and
settings (SQL in ``faxto/queries.sql``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from fax_api.accounts.rules import hash_password, verify_password
from fax_api.accounts.store import AccountStore
from fax_api.faxto import billing
from fax_api.faxto.rows import (
    FaxtoDocument,
    FaxtoNumber,
    FaxtoUser,
    ReceivedFax,
    ReceivedFaxFile,
)
from fax_contracts import DocumentStored
from fax_jobs import FaxJob
from fax_runtime.blobs import BlobNotFound, BlobStore, document_preview_key, read_if_present
from fax_runtime.outbox import enqueue
from fax_runtime.sql import load_queries, row_as

Q = load_queries("fax_api.faxto", "queries.sql")


async def _preview_wanted(conn: asyncpg.Connection, document_id: int, account_id: str, object_key: str) -> None:
    await enqueue(
        conn,
        DocumentStored(
            event_id=uuid.uuid4(),
            occurred_at=dt.datetime.now(dt.UTC),
            document_id=document_id,
            account_id=account_id,
            object_key=object_key,
        ),
    )


class EmailTaken(Exception):
    pass


class FaxtoStore:
    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore, accounts: AccountStore, signup_credit: Decimal) -> None:
        self._pool = pool
        self._blobs = blobs
        self._accounts = accounts
        self._signup_credit = signup_credit  # what a new user's account may spend before any top-up

    async def register(self, email: str, password: str, parent: FaxtoUser | None = None) -> FaxtoUser:
        """A user with a new account (or, for a sub-user, the parent's account) and a new api key."""
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._pool.acquire() as conn, conn.transaction():
            if parent is None:
                account_id = (await self._accounts.create_account(email, conn=conn)).id
                await billing.open_balance(conn, account_id, self._signup_credit)
            else:
                account_id = parent.account_id
            row = await conn.fetchrow(
                Q["insert_faxto_user"],
                account_id,
                parent.id if parent else None,
                email,
                password_hash,
                str(uuid.uuid4()),
            )
            if row is None:
                raise EmailTaken(email)
        return row_as(FaxtoUser, row)

    async def login(self, email: str, password: str) -> FaxtoUser | None:
        row = await self._pool.fetchrow(Q["faxto_user_by_email"], email)
        if row is None or not await asyncio.to_thread(verify_password, password, row["password_scrypt"]):
            return None
        return row_as(FaxtoUser, row)

    async def user_for_key(self, api_key: str) -> FaxtoUser | None:
        row = await self._pool.fetchrow(Q["faxto_user_by_api_key"], api_key)
        return row_as(FaxtoUser, row) if row else None

    async def balance(self, account_id: str) -> Decimal:
        return await billing.balance(self._pool, account_id)

    # Documents ---------------------------------------------------------------------------------------------------

    async def add_document(self, user: FaxtoUser, filename: str, content_type: str, body: bytes) -> FaxtoDocument:
        """Keep an uploaded file; its row and the fetcher's cue to draw its previews commit together."""
        key = f"faxto/{user.account_id}/documents/{uuid.uuid4()}"
        await self._blobs.put_bytes(key, body, content_type)
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    Q["insert_document"],
                    user.account_id,
                    user.id,
                    filename,
                    extension,
                    content_type,
                    key,
                    len(body),
                    billing.count_pages(body),
                )
                await _preview_wanted(conn, row["id"], user.account_id, key)
        except BaseException:
            await self._blobs.delete(key)
            raise
        return row_as(FaxtoDocument, row)

    async def request_preview(self, account_id: str, document_id: int) -> None:
        """Have the previews of a document uploaded before previews existed drawn (once)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["request_preview"], account_id, document_id)
            if row is not None:
                await _preview_wanted(conn, row["id"], account_id, row["object_key"])

    async def document(self, account_id: str, document_id: int) -> FaxtoDocument | None:
        row = await self._pool.fetchrow(Q["get_document"], account_id, document_id)
        return row_as(FaxtoDocument, row) if row else None

    async def document_by_id(self, document_id: int) -> FaxtoDocument | None:
        """Any account's document: only for signed links, whose signature is the authorisation."""
        row = await self._pool.fetchrow(Q["document_by_id"], document_id)
        return row_as(FaxtoDocument, row) if row else None

    async def document_bytes(self, document: FaxtoDocument) -> bytes | None:
        return await read_if_present(self._blobs, document.object_key)

    async def preview(self, document: FaxtoDocument, page: int) -> bytes | None:
        """The PNG of a page of the document as it will be faxed; None until the fetcher drew it."""
        return await read_if_present(self._blobs, document_preview_key(document.object_key, page))

    async def documents(self, account_id: str, limit: int = 500) -> list[FaxtoDocument]:
        return [row_as(FaxtoDocument, row) for row in await self._pool.fetch(Q["list_documents"], account_id, limit)]

    async def delete_document(self, account_id: str, document_id: int) -> bool:
        row = await self._pool.fetchrow(Q["delete_document"], account_id, document_id)
        if row is None:
            return False
        keys = [row["object_key"]]
        if row["preview_status"] == "ready":  # a render finishing after this delete removes its own previews
            keys += [document_preview_key(row["object_key"], page) for page in range(1, row["total_pages"] + 1)]
        for key in keys:
            with contextlib.suppress(BlobNotFound):
                await self._blobs.delete(key)
        return True

    # Jobs and received faxes -------------------------------------------------------------------------------------

    async def job(self, account_id: str, fax_job_id: int | uuid.UUID) -> FaxJob | None:
        """The account's job by the integer id a send answered, or by its Kazoo id."""
        by_int, by_uuid = (fax_job_id, None) if isinstance(fax_job_id, int) else (None, fax_job_id)
        row = await self._pool.fetchrow(Q["faxto_job"], account_id, by_int, by_uuid)
        return row_as(FaxJob, row) if row else None

    async def history(self, account_id: str, limit: int = 500) -> list[FaxJob]:
        return [row_as(FaxJob, row) for row in await self._pool.fetch(Q["job_history"], account_id, limit)]

    async def received(
        self, account_id: str, recipient: str | None, per_page: int, offset: int
    ) -> tuple[int, list[ReceivedFax]]:
        """All the account's received faxes (to ``recipient`` when given) and a page of them, with their sizes."""
        total = await self._pool.fetchval(Q["count_received"], account_id, recipient)
        rows = await self._pool.fetch(Q["page_received"], account_id, recipient, per_page, offset)
        # Fax.to lists each file's size; S3 knows it (one HEAD per listed fax, at most a page of them). A fax whose
        # documents were removed (Kazoo's DELETE .../attachment) has none.
        sizes = await asyncio.gather(*(self._size(row["pdf_key"] or row["tiff_key"]) for row in rows))
        return total, [row_as(ReceivedFax, {**row, "filesize": size}) for row, size in zip(rows, sizes, strict=True)]

    async def _size(self, key: str | None) -> int | None:
        return await self._blobs.size(key) if key else None

    async def received_fax(self, fax_id: uuid.UUID) -> ReceivedFaxFile | None:
        row = await self._pool.fetchrow(Q["received_fax"], fax_id)
        return row_as(ReceivedFaxFile, row) if row else None

    async def received_fax_document(self, key: str) -> bytes | None:
        return await read_if_present(self._blobs, key)

    # Numbers and settings ----------------------------------------------------------------------------------------

    async def provision(self, account_id: str, candidates: list[tuple[str, int]]) -> FaxtoNumber | None:
        """The first of ``candidates`` ((e164, did group)) nobody holds, now the account's; None if all are taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            for e164, did_group_id in candidates:
                if await conn.fetchval(Q["claim_phone_number"], e164, account_id) is not None:
                    row = await conn.fetchrow(Q["insert_faxto_number"], account_id, e164, did_group_id)
                    return row_as(FaxtoNumber, row)
        return None

    async def numbers(self, account_id: str, per_page: int, offset: int) -> tuple[int, list[FaxtoNumber]]:
        total = await self._pool.fetchval(Q["count_numbers"], account_id)
        rows = await self._pool.fetch(Q["page_numbers"], account_id, per_page, offset)
        return total, [row_as(FaxtoNumber, row) for row in rows]

    async def callback_url(self, account_id: str) -> str:
        """The account's API-settings callback ("" when none is set)."""
        return await self._pool.fetchval(Q["faxto_callback_url"], account_id) or ""

    async def set_callback_url(self, account_id: str, url: str) -> None:
        await self._pool.execute(Q["set_faxto_callback_url"], account_id, url)
