-- 0012_treewalk: organizational domains by the DMARCbis DNS tree walk
-- (RFC 9989 4.10), for the reports whose policy_published says
-- discovery_method=treewalk (docs/analytics.md, docs/resolve.md).
--
-- At ingest every report is aligned with the Public Suffix List. `dmarcd
-- resolve` then walks the DNS for each domain that matters to a treewalk
-- report (the header_from domains and the DKIM and SPF domains of its
-- records) and keeps the answer here:
--
--   org         the tree walk's organizational domain; '' while unknown
--               (the walk failed and never succeeded before)
--   psl_org     the PSL's, for comparison ('' when not a domain)
--   status      ok; invalid (not a domain name: never walked); timeout,
--               servfail, refused, error (the DNS failed: org keeps
--               what an earlier walk found)
--   changed_at  when org last changed
--   expires_at  walked again after it (a day; 15 minutes after a
--               failure)
--
-- A treewalk report whose records involve a domain where the two differ
-- is aligned again with the tree walk's answers and its rollup redone;
-- policy_published.realigned_at says when, so that it is done again only
-- when one of its domains' org changes after that.

CREATE TABLE dmarcd.treewalk_orgs (
	domain		text PRIMARY KEY,
	org		text NOT NULL DEFAULT '',
	psl_org		text NOT NULL DEFAULT '',
	status		text NOT NULL CHECK (status IN ('ok', 'invalid',
	    'timeout', 'servfail', 'refused', 'error')),
	walked_at	timestamptz NOT NULL DEFAULT now(),
	changed_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL
);
CREATE INDEX treewalk_orgs_expiry ON dmarcd.treewalk_orgs (expires_at);
-- The few domains where the walk and the PSL disagree.
CREATE INDEX treewalk_orgs_differ ON dmarcd.treewalk_orgs (domain)
    WHERE org <> '' AND org <> psl_org;

ALTER TABLE dmarcd.policy_published ADD COLUMN realigned_at timestamptz;
CREATE INDEX policy_published_treewalk ON dmarcd.policy_published
    (domain, report) WHERE discovery_method = 'treewalk';

GRANT SELECT, INSERT, UPDATE, DELETE ON dmarcd.treewalk_orgs
    TO dmarcd_ingest;
GRANT SELECT ON dmarcd.treewalk_orgs TO dmarcd_reader;
