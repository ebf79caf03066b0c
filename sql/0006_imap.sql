-- 0006_imap: what the IMAP collector (dmarcd fetch, dmarcd run) keeps with
-- the reports, in the same transaction as them.
--
--   imap_mailboxes      per (account, mailbox): the UIDVALIDITY seen and
--                       the highest UID whose message is stored. A crash
--                       before the commit leaves both as they were: the
--                       messages are fetched again.
--   imap_pending_moves  the move each stored message needs (to a folder,
--                       or deletion when folder is NULL), recorded with
--                       it and forgotten once done. A crash between the
--                       commit and the move leaves the row: the next pass
--                       moves the message first.
--
-- Neither holds report data; on Citus they are local tables of the
-- coordinator (only the collector reads them), not distributed by domain.

CREATE TABLE dmarcd.imap_mailboxes (
	account		text NOT NULL,
	mailbox		text NOT NULL,
	uidvalidity	bigint NOT NULL,
	last_uid	bigint NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, mailbox)
);

CREATE TABLE dmarcd.imap_pending_moves (
	account		text NOT NULL,
	mailbox		text NOT NULL,
	uidvalidity	bigint NOT NULL,
	uid		bigint NOT NULL,
	folder		text,		-- NULL: delete the message
	stored_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account, mailbox, uidvalidity, uid)
);

GRANT SELECT, INSERT, UPDATE ON dmarcd.imap_mailboxes TO dmarcd_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON dmarcd.imap_pending_moves
    TO dmarcd_ingest;
-- Not report data: the reader (API, Grafana) has no use for them.
REVOKE SELECT ON dmarcd.imap_mailboxes, dmarcd.imap_pending_moves
    FROM dmarcd_reader;
