-- 0007_analytics: alignment as dmarcd works it out, source identity, and
-- what the API and alerts keep.
--
-- records gains dmarcd's own reading of each row, computed at ingest from
-- the row's DKIM and SPF results, its header_from and the published
-- adkim/aspf (organizational domains from the Public Suffix List):
--
--   auth         a bit set (dmarcd.auth_bits names them):
--                  1  dkim_aligned   a DKIM pass for a domain aligned
--                                    with header_from (under adkim)
--                  2  spf_aligned    an SPF pass (MAIL FROM, or HELO
--                                    when there is no MAIL FROM result)
--                                    for a domain aligned (under aspf)
--                  4  dkim_pass      a DKIM pass for any domain
--                  8  spf_pass       an SPF pass for any domain
--                 16  spf_own        the SPF domain is aligned with
--                                    header_from, whatever its result
--                 32  dkim_own       some signature's d= is aligned,
--                                    whatever its result
--                 64  guessed        not computed: taken from the
--                                    receiver's policy_evaluated (rows
--                                    stored before this migration)
--   dkim_domain  the d= that decided: the first aligned pass, else the
--                first pass, else the first signature ('' when none)
--   spf_domain   the SPF domain (MAIL FROM scope first; '' when none)
--   override     the receiver's override reason that matters most:
--                forwarded, mailing_list, trusted_forwarder, local_policy,
--                sampled_out, policy_test_mode, other; '' when none
--
-- rollup_daily keeps the receiver's verdict (dkim_aligned, spf_aligned:
-- policy_evaluated said pass) beside dmarcd's (auth), so the two can be
-- compared and their disagreements counted.

ALTER TABLE dmarcd.records
	ADD COLUMN auth smallint,
	ADD COLUMN dkim_domain text,
	ADD COLUMN spf_domain text,
	ADD COLUMN override text;

ALTER TABLE dmarcd.rollup_daily
	ADD COLUMN auth smallint NOT NULL DEFAULT 0,
	ADD COLUMN dkim_domain text NOT NULL DEFAULT '',
	ADD COLUMN spf_domain text NOT NULL DEFAULT '',
	ADD COLUMN override text NOT NULL DEFAULT '';
-- Rows from before: dmarcd's verdict is the receiver's, marked guessed.
UPDATE dmarcd.rollup_daily SET auth = 64 |
    CASE WHEN dkim_aligned THEN 1 | 4 | 32 ELSE 0 END |
    CASE WHEN spf_aligned THEN 2 | 8 | 16 ELSE 0 END;
ALTER TABLE dmarcd.rollup_daily DROP CONSTRAINT rollup_daily_key;
ALTER TABLE dmarcd.rollup_daily ADD CONSTRAINT rollup_daily_key
    UNIQUE NULLS NOT DISTINCT (domain, day, source_ip, header_from,
    dkim_aligned, spf_aligned, disposition, auth, dkim_domain, spf_domain,
    override);

-- rollup_add, as in 0001, with dmarcd's verdict (rows stored before
-- this migration have none: the receiver's, marked guessed).
CREATE OR REPLACE FUNCTION dmarcd.rollup_add(domains text[], ids bigint[],
    begins timestamptz[], sign integer DEFAULT 1) RETURNS void
LANGUAGE sql AS $$
	WITH d AS MATERIALIZED (
		SELECT k.domain, k.id, k.begin_time, x.day, x.lo, x.hi, x.total
		FROM unnest(domains, ids, begins) AS k(domain, id, begin_time)
		JOIN dmarcd.reports rp ON rp.domain = k.domain AND rp.id = k.id
		CROSS JOIN LATERAL dmarcd.report_days(rp.begin_time,
		    rp.end_time) x)
	INSERT INTO dmarcd.rollup_daily AS t (domain, day, source_ip,
	    header_from, dkim_aligned, spf_aligned, disposition, auth,
	    dkim_domain, spf_domain, override, messages)
	SELECT r.domain, d.day, r.source_ip, coalesce(lower(r.header_from), ''),
	    coalesce(r.dkim = 'pass', false), coalesce(r.spf = 'pass', false),
	    coalesce(r.disposition, ''),
	    coalesce(r.auth, 64 |
	        CASE WHEN r.dkim = 'pass' THEN 1 | 4 | 32 ELSE 0 END |
	        CASE WHEN r.spf = 'pass' THEN 2 | 8 | 16 ELSE 0 END),
	    coalesce(r.dkim_domain, ''), coalesce(r.spf_domain, ''),
	    coalesce(r.override, ''),
	    sign * sum(CASE WHEN d.lo = 0 AND d.hi = d.total THEN r.count ELSE
	        (div(r.count::numeric * d.hi, d.total) -
	        div(r.count::numeric * d.lo, d.total))::bigint END)
	FROM d JOIN dmarcd.records r ON r.domain = d.domain AND
	    r.report = d.id AND r.report_begin = d.begin_time
	GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
	HAVING sum(CASE WHEN d.lo = 0 AND d.hi = d.total THEN r.count ELSE
	    (div(r.count::numeric * d.hi, d.total) -
	    div(r.count::numeric * d.lo, d.total))::bigint END) <> 0
	ON CONFLICT ON CONSTRAINT rollup_daily_key
	DO UPDATE SET messages = t.messages + excluded.messages
$$;

-- Reverse DNS of source addresses (dmarcd resolve): the PTR names, the
-- one that resolves back to the address (forward-confirmed), and its
-- organizational domain. Kept until expires_at (the answer's TTL, within
-- bounds), then asked again.
CREATE TABLE dmarcd.ip_names (
	ip		inet PRIMARY KEY,
	ptr		text NOT NULL DEFAULT '',	-- confirmed name, or ''
	names		text[] NOT NULL DEFAULT '{}',	-- every PTR name
	confirmed	boolean NOT NULL DEFAULT false,
	org		text NOT NULL DEFAULT '',	-- of ptr
	status		text NOT NULL CHECK (status IN ('ok', 'unconfirmed',
	    'nxdomain', 'nodata', 'servfail', 'refused', 'timeout', 'error')),
	resolved_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL
);
CREATE INDEX ip_names_expiry ON dmarcd.ip_names (expires_at);

-- Organizational domains of the DKIM and SPF domains seen (libpsl).
CREATE TABLE dmarcd.domain_orgs (
	domain		text PRIMARY KEY,
	org		text NOT NULL
);

-- Sending platforms and how each makes SPF and DKIM align; loaded from
-- sql/platforms.tsv and sql/sender_rules.tsv by dmarcd migrate.
CREATE TABLE dmarcd.platforms (
	name		text PRIMARY KEY,
	kind		text NOT NULL DEFAULT '',
	spf_fix		text NOT NULL,
	dkim_fix	text NOT NULL,
	url		text NOT NULL DEFAULT ''
);
-- kind: ptr (the confirmed PTR name), dkim (a d= domain), spf (the SPF
-- domain). suffix matches the name itself and every name under it.
CREATE TABLE dmarcd.sender_rules (
	kind		text NOT NULL CHECK (kind IN ('ptr', 'dkim', 'spf')),
	suffix		text NOT NULL,
	platform	text NOT NULL REFERENCES dmarcd.platforms
	    ON UPDATE CASCADE ON DELETE CASCADE,
	PRIMARY KEY (kind, suffix)
);

-- API bearer tokens: only their SHA-256 is kept. domains NULL: every
-- domain.
CREATE TABLE dmarcd.api_tokens (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	sha256		bytea NOT NULL UNIQUE,
	domains		text[],
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz,
	revoked_at	timestamptz
);

-- Alerts raised (webhooks): one row per (domain, kind, key), so the same
-- event is never sent twice.
CREATE TABLE dmarcd.alerts (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	domain		text NOT NULL,
	kind		text NOT NULL,
	key		text NOT NULL,
	detail		jsonb NOT NULL,
	raised_at	timestamptz NOT NULL DEFAULT now(),
	sent_at		timestamptz,		-- NULL: not delivered yet
	attempts	integer NOT NULL DEFAULT 0,
	last_error	text,
	UNIQUE (domain, kind, key)
);

-- When each mailbox was last fetched to its end (for /metrics).
ALTER TABLE dmarcd.imap_mailboxes ADD COLUMN last_fetch_at timestamptz;

GRANT SELECT, INSERT, UPDATE, DELETE ON dmarcd.ip_names, dmarcd.domain_orgs,
    dmarcd.platforms, dmarcd.sender_rules, dmarcd.api_tokens, dmarcd.alerts
    TO dmarcd_ingest;
GRANT SELECT ON dmarcd.ip_names, dmarcd.domain_orgs, dmarcd.platforms,
    dmarcd.sender_rules, dmarcd.api_tokens TO dmarcd_reader;
-- The API reads last_fetch_at for /metrics, nothing secret.
GRANT SELECT (account, mailbox, last_fetch_at, updated_at)
    ON dmarcd.imap_mailboxes TO dmarcd_reader;
REVOKE SELECT ON dmarcd.alerts FROM dmarcd_reader;
GRANT SELECT (id, domain, kind, key, detail, raised_at, sent_at)
    ON dmarcd.alerts TO dmarcd_reader;
