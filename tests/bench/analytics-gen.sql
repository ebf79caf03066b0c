-- analytics-gen.sql - the data set of tests/bench/analytics-bench.sh:
-- :rows record rows over :days UTC days up to :end (exclusive) for
-- :domains domains, made in SQL (generate_series, hashes: the same
-- arguments give the same rows).
--
-- psql -v rows=10000000 -v domains=1000 -v days=90 -v end=2025-01-01 \
--     -v step=profiles|calibrate|data -f analytics-gen.sql
--
-- step=profiles  the schema bench: the kinds of source a domain has (its
--                own servers, Google, Microsoft, SendGrid, Mailchimp,
--                Amazon SES, forwarders, mailing lists, spoofers, other
--                tools), and bench.calibration_xml(): one aggregate
--                report of calib.test with a record of each kind.
-- step=calibrate after `dmarcd ingest` of that report: each kind takes
--                dmarcd's own verdict (auth, dkim_domain, spf_domain,
--                override) from the record ingest stored, and every
--                other column of the generated rows is compared with
--                what ingest stored: any difference is an error. So the
--                rows made here are those ingest makes, by construction.
-- step=data      the reports (policy_published, reporters), records,
--                dkim_results and spf_results, then the rollup by
--                dmarcd.rollup_add() itself (the SQL path of ingest),
--                ip_names (as dmarcd resolve stores them) and domain_orgs.
--
-- Shape: domain sizes are log-normal (a few big, many small); a domain's
-- sources (its platforms' addresses) grow with its size; each day each
-- of 12 reporters sends it a report with some probability (Google and
-- Microsoft almost always); Microsoft's reports run 07:00 to 07:00 UTC,
-- so they are apportioned over two days. Record counts are skewed.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

\if :{?step}
\else
\set step data
\endif

SELECT :'step' = 'profiles' AS is_profiles, :'step' = 'calibrate' AS
    is_calibrate, :'step' = 'data' AS is_data \gset

\if :is_profiles
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- A uniform number in [0, 1) from two integers.
CREATE FUNCTION bench.u(a bigint, b bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT (hashint8extended(a, b) & 281474976710655)::float8 /
	    281474976710656.0
$$;

-- The kinds of source. Patterns: {d} the domain, {n} the address's
-- number, {m} the source's number. pool: where its addresses come from
-- (an address block, + number modulo size); own: per domain.
CREATE TABLE bench.profiles (
	no		integer PRIMARY KEY,
	kind		text NOT NULL,
	ptr		text NOT NULL,		-- '' none
	confirmed	boolean NOT NULL,
	hf		text NOT NULL,
	dkim_d		text NOT NULL,		-- '' no signature
	dkim_res	text NOT NULL,
	spf_d		text NOT NULL,
	spf_res		text NOT NULL,
	pe_dkim		text NOT NULL,
	pe_spf		text NOT NULL,
	reason		text,		-- override reason or NULL
	pool		inet,			-- NULL: per domain
	pool_size	integer NOT NULL,
	scale		integer NOT NULL,	-- record counts up to
	-- from calibration: dmarcd's verdict
	auth		smallint,
	c_dkim_d	text,
	c_spf_d		text,
	c_override	text
);
INSERT INTO bench.profiles VALUES
 (1, 'own', 'mail{n}.{d}', true, '{d}', '{d}', 'pass', '{d}', 'pass',
  'pass', 'pass', NULL, NULL, 0, 40),
 (2, 'google', 'mail-{n}.google.com', true, '{d}', '{d}', 'pass', '{d}',
  'pass', 'pass', 'pass', NULL, '209.85.128.0', 16384, 150),
 (3, 'microsoft', 'mail-{n}.outbound.protection.outlook.com', true, '{d}',
  '{d}', 'pass', '{d}', 'pass', 'pass', 'pass', NULL, '40.107.0.0', 32768,
  150),
 (4, 'sendgrid', 'o{n}.ptr.sendgrid.net', true, '{d}', 'sendgrid.net',
  'pass', 'bounces.sendgrid.net', 'pass', 'fail', 'fail', NULL,
  '167.89.0.0', 8192, 60),
 (5, 'mailchimp', 'mail{n}.mcsv.net', true, 'news.{d}', '{d}', 'pass',
  'mail{n}.mcsv.net', 'pass', 'pass', 'fail', NULL, '205.201.128.0', 4096,
  60),
 (6, 'amazonses', 'a{n}-smtp-out.amazonses.com', true, '{d}',
  'amazonses.com', 'pass', 'amazonses.com', 'pass', 'fail', 'fail', NULL,
  '54.240.0.0', 8192, 60),
 -- the main platform's mail with a broken signature
 (7, 'own_dkim_fail', 'mail{n}.{d}', true, '{d}', '{d}', 'fail', '{d}',
  'pass', 'fail', 'pass', NULL, NULL, 0, 3),
 (8, 'forwarder', 'mx{n}.isp{m}.test', true, '{d}', '{d}', 'pass', '{d}',
  'fail', 'pass', 'fail', NULL, '198.18.0.0', 65536, 5),
 (9, 'forwarder_said', 'mx{n}.isp{m}.test', true, '{d}', '{d}', 'pass',
  '{d}', 'fail', 'pass', 'fail', 'forwarded', '198.18.0.0', 65536, 5),
 (10, 'mailing_list', 'lists{n}.list{m}.test', true, '{d}', '{d}', 'fail',
  'list{m}.test', 'pass', 'fail', 'fail', 'mailing_list', '198.19.0.0',
  65536, 4),
 (11, 'spoof', '', false, '{d}', '', '', '{d}', 'fail', 'fail', 'fail',
  NULL, '11.0.0.0', 16777216, 3),
 (12, 'spoof_dyn', 'host{n}.dyn{m}.test', false, '{d}', '', '',
  'spam{m}.test', 'softfail', 'fail', 'fail', NULL, '12.0.0.0', 16777216,
  3),
 (13, 'other_tool', '', false, '{d}', 'tool{m}.test', 'pass',
  'bounce.tool{m}.test', 'pass', 'fail', 'fail', NULL, '13.0.0.0', 65536,
  20);

CREATE FUNCTION bench.fill(pat text, d text, n bigint, m bigint)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT replace(replace(replace(pat, '{d}', d), '{n}', n::text), '{m}',
	    m::text)
$$;

-- One report of calib.test with one record of each kind (idx = no).
CREATE FUNCTION bench.calibration_xml() RETURNS text LANGUAGE sql AS $$
	SELECT '<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>calibration</org_name>
<email>calib@calib.test</email><report_id>calib-1</report_id>
<date_range><begin>1700000000</begin><end>1700086400</end></date_range>
</report_metadata><policy_published><domain>calib.test</domain>
<adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct>
</policy_published>' || string_agg(format('<record><row>
<source_ip>192.0.2.%s</source_ip><count>%s</count><policy_evaluated>
<disposition>none</disposition><dkim>%s</dkim><spf>%s</spf>%s
</policy_evaluated></row><identifiers><header_from>%s</header_from>
</identifiers><auth_results>%s<spf><domain>%s</domain><scope>mfrom</scope>
<result>%s</result></spf></auth_results></record>', p.no, p.no, p.pe_dkim,
	    p.pe_spf, CASE WHEN p.reason IS NOT NULL THEN
		format('<reason><type>%s</type></reason>', p.reason) ELSE ''
		END,
	    bench.fill(p.hf, 'calib.test', 1, 1),
	    CASE WHEN p.dkim_d <> '' THEN format('<dkim><domain>%s</domain>'
		'<selector>s1</selector><result>%s</result></dkim>',
		bench.fill(p.dkim_d, 'calib.test', 1, 1), p.dkim_res) ELSE ''
		END,
	    bench.fill(p.spf_d, 'calib.test', 1, 1), p.spf_res), '
' ORDER BY p.no) || '</feedback>
'
	FROM bench.profiles p
$$;

-- A record of kind p for domain d (number n, source m, count c), as
-- the columns ingest stores after (domain, report_begin, report, idx,
-- source_ip).
-- (A set-returning SQL function: the planner inlines it.)
CREATE FUNCTION bench.rec(p bench.profiles, d text, disp text, n bigint,
    m bigint)
RETURNS TABLE (header_from text, disposition text, dkim text, spf text,
    reasons text[], reason_comments text[], auth smallint,
    dkim_domain text, spf_domain text, override text)
LANGUAGE sql IMMUTABLE AS $$
	SELECT bench.fill(p.hf, d, n, m), disp, p.pe_dkim, p.pe_spf,
	    CASE WHEN p.reason IS NOT NULL THEN ARRAY[p.reason] END,
	    CASE WHEN p.reason IS NOT NULL THEN ARRAY[NULL::text] END,
	    p.auth, bench.fill(p.c_dkim_d, d, n, m),
	    bench.fill(p.c_spf_d, d, n, m), p.c_override
$$;
\endif

\if :is_calibrate
UPDATE bench.profiles p SET auth = r.auth,
    c_dkim_d = CASE WHEN r.dkim_domain = bench.fill(p.dkim_d, 'calib.test',
	1, 1) THEN p.dkim_d ELSE replace(r.dkim_domain, 'calib.test', '{d}')
	END,
    c_spf_d = CASE WHEN r.spf_domain = bench.fill(p.spf_d, 'calib.test',
	1, 1) THEN p.spf_d ELSE replace(r.spf_domain, 'calib.test', '{d}')
	END,
    c_override = r.override
FROM dmarcd.records r
WHERE r.domain = 'calib.test' AND r.idx = p.no;
-- Placeholders written back the same way must give the stored rows.
SELECT count(*) AS mismatches FROM bench.profiles p
JOIN dmarcd.records r ON r.domain = 'calib.test' AND r.idx = p.no
CROSS JOIN LATERAL bench.rec(p, 'calib.test', 'none', 1, 1) x
WHERE (r.header_from, r.disposition, r.dkim, r.spf, r.reasons,
    r.reason_comments, r.auth, r.dkim_domain, r.spf_domain, r.override,
    r.count, r.source_ip, r.envelope_from, r.envelope_to) IS DISTINCT FROM
    (x.header_from, x.disposition, x.dkim, x.spf, x.reasons,
    x.reason_comments, x.auth, x.dkim_domain, x.spf_domain, x.override,
    p.no::bigint, ('192.0.2.' || p.no)::inet, NULL::text, NULL::text)
\gset
SELECT count(*) AS calibrated FROM bench.profiles WHERE auth IS NOT NULL
\gset
\if :mismatches
\echo analytics-gen: generated rows differ from what ingest stored
SELECT 1/0;
\endif
SELECT (SELECT count(*) FROM bench.profiles) <> :calibrated AS short \gset
\if :short
\echo analytics-gen: not every kind of source was calibrated
SELECT 1/0;
\endif
\endif

\if :is_data
-- Bulk work: hash joins (the planner, misled by generate_series's
-- estimate, would sort tens of millions of rows), no JIT.
SET work_mem = '256MB';
SET jit = off;
SET enable_mergejoin = off;

-- Domains: size factor f (log-normal), policy.
CREATE TABLE bench.domains AS
SELECT d AS no, format('dom%s.test', d) AS name,
    exp(1.3 * (bench.u(d, 1) + bench.u(d, 2) + bench.u(d, 3) - 1.5) * 2)
	AS f,
    CASE WHEN bench.u(d, 4) < 0.5 THEN 'none' WHEN bench.u(d, 4) < 0.8
	THEN 'quarantine' ELSE 'reject' END AS p,
    1 + floor(bench.u(d, 5) * 3)::integer AS main	-- own/google/microsoft
FROM generate_series(1, :domains) d;

-- A domain's sources: (kind, address, weight).
CREATE TABLE bench.sources AS
WITH spec AS (
	SELECT d.no AS dom, d.name, d.f, s.profile, s.m, s.nips, s.weight
	FROM bench.domains d
	CROSS JOIN LATERAL (VALUES
	    (d.main, 0, least(40, 2 + floor(3 * sqrt(d.f)))::integer, 20),
	    (7, 0, CASE WHEN bench.u(d.no, 6) < 0.6 THEN 1 ELSE 0 END, 2),
	    (4, 0, CASE WHEN bench.u(d.no, 7) < 0.4 THEN 1 + floor(2 *
		sqrt(d.f))::integer ELSE 0 END, 6),
	    (5, 0, CASE WHEN bench.u(d.no, 8) < 0.4 THEN 1 + floor(2 *
		sqrt(d.f))::integer ELSE 0 END, 6),
	    (6, 0, CASE WHEN bench.u(d.no, 9) < 0.3 THEN 1 + floor(2 *
		sqrt(d.f))::integer ELSE 0 END, 6),
	    (8, (d.no % 17) + 1, 1 + floor(2 * sqrt(d.f))::integer, 2),
	    (9, (d.no % 13) + 1, 1 + floor(sqrt(d.f))::integer, 2),
	    (10, (d.no % 7) + 1, CASE WHEN bench.u(d.no, 10) < 0.5 THEN 1 +
		floor(sqrt(d.f))::integer ELSE 0 END, 2),
	    (11, 0, 2 + floor(4 * sqrt(d.f))::integer, 1),
	    (12, (d.no % 29) + 1, 1 + floor(3 * sqrt(d.f))::integer, 1),
	    (13, (d.no % 11) + 1, CASE WHEN bench.u(d.no, 11) < 0.3 THEN 1 +
		floor(sqrt(d.f))::integer ELSE 0 END, 3)
	    ) AS s(profile, m, nips, weight))
SELECT row_number() OVER (ORDER BY spec.dom, spec.profile, i) AS src,
    spec.dom, spec.profile, spec.m, i AS n, spec.weight,
    CASE WHEN p.pool IS NULL THEN '100.64.0.0'::inet + (spec.dom * 64 +
	least(i, 63))
	WHEN spec.profile = 2 AND bench.u(spec.dom, 100 + i) < 0.3 THEN
	'2a00:1450:4000::'::inet + (hashint8extended(spec.dom * 100 + i, 3)
	& 65535)
	ELSE p.pool + (hashint8extended(spec.dom * 1000 + spec.profile * 64
	+ i, 5) & 9223372036854775807) % p.pool_size END AS ip
FROM spec JOIN bench.profiles p ON p.no = spec.profile
CROSS JOIN LATERAL generate_series(1, spec.nips) i;
-- The domain-failing variant of the main platform uses its addresses.
UPDATE bench.sources s SET ip = m.ip FROM bench.sources m, bench.domains d
WHERE s.profile = 7 AND m.dom = s.dom AND d.no = s.dom AND
    m.profile = d.main AND m.n = 1;

-- Slots: each source as many times as its weight; a record picks one.
CREATE TABLE bench.slots AS
SELECT s.dom, (row_number() OVER (PARTITION BY s.dom ORDER BY s.src,
    w) - 1)::integer AS slot, s.src
FROM bench.sources s CROSS JOIN LATERAL generate_series(1, s.weight) w;
CREATE INDEX ON bench.slots (dom, slot);
CREATE TABLE bench.nslots AS
SELECT dom, count(*)::integer AS n FROM bench.slots GROUP BY dom;

-- Reporters, with how likely each reports a domain on a day, and its
-- share of the records.
CREATE TABLE bench.reporters (no integer, org_name text, email text,
    p float8, w float8, shift integer);
INSERT INTO bench.reporters VALUES
 (1, 'google.com', 'noreply-dmarc-support@google.com', 0.95, 4, 0),
 (2, 'Enterprise Outlook', 'dmarcreport@microsoft.com', 0.85, 3, 7),
 (3, 'Yahoo', 'dmarchelp@yahooinc.com', 0.6, 2, 0),
 (4, 'Mail.Ru', 'dmarc_support@corp.mail.ru', 0.2, 1, 0),
 (5, 'comcast.net', 'dmarc@comcast.net', 0.3, 1, 0),
 (6, 'web.de', 'dmarc@web.de', 0.2, 0.8, 0),
 (7, 'Fastmail Pty Ltd', 'dmarc@fastmail.com', 0.15, 0.5, 0),
 (8, 'Orange', 'dmarc@orange.fr', 0.2, 0.8, 0),
 (9, 'GMX', 'dmarc@gmx.net', 0.2, 0.8, 0),
 (10, 'protection.outlook.com', 'dmarc@protection.outlook.com', 0.3, 1,
  0),
 (11, 'Seznam.cz', 'dmarc@seznam.cz', 0.1, 0.5, 0),
 (12, 'zoho.com', 'noreply-dmarc@zoho.com', 0.1, 0.5, 0);
INSERT INTO dmarcd.reporters (org_name, email)
SELECT org_name, email FROM bench.reporters ON CONFLICT DO NOTHING;

-- Reports: (domain, day, reporter) when the reporter saw the domain that
-- day; their record counts add up to :rows exactly.
CREATE TABLE bench.reports AS
WITH r AS (
	SELECT d.no AS dom, d.name, day, rp.no AS reporter, rp.shift,
	    -- numeric: sums exact in any order, so the counts add up
	    (d.f * rp.w * (0.5 + bench.u(d.no * 100000 + day * 16 + rp.no,
		20)))::numeric(30, 12) AS size
	FROM bench.domains d
	CROSS JOIN generate_series(0, :days - 1) day
	JOIN bench.reporters rp ON bench.u(d.no * 100000 + day * 16 + rp.no,
	    21) < least(1, rp.p * (0.4 + d.f))),
c AS (
	SELECT r.*, sum(size) OVER (ORDER BY dom, day, reporter) AS cum,
	    sum(size) OVER () AS total
	FROM r)
SELECT row_number() OVER (ORDER BY dom, day, reporter) AS k, dom, name,
    reporter, (:'end'::date - :days + day)::timestamp AT TIME ZONE 'UTC' +
	make_interval(hours => shift) AS begin_time,
    (div(:rows::numeric * cum, total) -
	div(:rows::numeric * (cum - size), total))::integer AS n
FROM c;
DELETE FROM bench.reports WHERE n = 0;

-- The partitions of the months.
SELECT count(dmarcd.ensure_month(m)) AS months
FROM generate_series(date_trunc('month', :'end'::date - :days),
    :'end'::date + 1, interval '1 month') m \gset

-- Records: record j of report k takes slot hash(k, j) of its domain.
ANALYZE bench.reports, bench.slots, bench.nslots, bench.sources,
    bench.domains;
CREATE UNLOGGED TABLE bench.recs AS
WITH x AS MATERIALIZED (
	SELECT rp.k, rp.dom, rp.name, rp.begin_time, j AS idx,
	    ((hashint8extended(rp.k * 4096 + j, 30) & 2147483647) %
		ns.n)::integer AS slot
	FROM bench.reports rp
	JOIN bench.nslots ns ON ns.dom = rp.dom
	CROSS JOIN LATERAL generate_series(1, rp.n) j)
SELECT x.k, x.dom, x.name, x.begin_time, x.idx, s.src, s.profile, s.m,
    s.n, s.ip,
    1 + floor(p.scale * bench.u(x.k * 4096 + x.idx, 31) ^ 3 *
	(0.5 + bench.u(x.k, 32)))::bigint AS count,
    CASE WHEN p.pe_dkim = 'pass' OR p.pe_spf = 'pass' THEN 'none'
	ELSE d.p END AS disp
FROM x
JOIN bench.slots sl ON sl.dom = x.dom AND sl.slot = x.slot
JOIN bench.sources s ON s.src = sl.src
JOIN bench.profiles p ON p.no = s.profile
JOIN bench.domains d ON d.no = x.dom;
ANALYZE bench.recs;

INSERT INTO dmarcd.reports (domain, reporter_id, org_name, report_id,
    begin_time, end_time, payload_sha256, payload_bytes, schema, email,
    record_count, message_count, raw_sha256, source)
SELECT rp.name, dr.id, br.org_name, 'bench-' || rp.k, rp.begin_time,
    rp.begin_time + interval '1 day',
    sha256(('bench-' || rp.k)::bytea), 200 + 300 * rp.n, 'rfc7489',
    br.email, rp.n, t.m, sha256(('raw-' || rp.k)::bytea),
    'bench-' || rp.k || '.xml'
FROM bench.reports rp
JOIN bench.reporters br ON br.no = rp.reporter
JOIN dmarcd.reporters dr ON dr.org_name = br.org_name AND
    dr.email = br.email
JOIN (SELECT k, sum(count) AS m FROM bench.recs GROUP BY k) t ON
    t.k = rp.k;
CREATE TABLE bench.ids AS
SELECT rp.k, r.id FROM bench.reports rp JOIN dmarcd.reports r ON
    r.domain = rp.name AND r.report_id = 'bench-' || rp.k;
CREATE UNIQUE INDEX ON bench.ids (k);

INSERT INTO dmarcd.policy_published (domain, report, adkim, aspf, p, sp,
    pct, raw)
SELECT rp.name, i.id, 'r', 'r', d.p, NULL, 100, NULL
FROM bench.reports rp JOIN bench.ids i ON i.k = rp.k
JOIN bench.domains d ON d.no = rp.dom;

INSERT INTO dmarcd.records (domain, report_begin, report, idx, source_ip,
    count, disposition, dkim, spf, reasons, reason_comments, header_from,
    auth, dkim_domain, spf_domain, override)
SELECT rc.name, rc.begin_time, i.id, rc.idx, rc.ip, rc.count,
    y.disposition, y.dkim, y.spf, y.reasons, y.reason_comments,
    y.header_from, y.auth, y.dkim_domain, y.spf_domain, y.override
FROM bench.recs rc JOIN bench.profiles p ON p.no = rc.profile
JOIN bench.ids i ON i.k = rc.k
CROSS JOIN LATERAL bench.rec(p, rc.name, rc.disp, rc.n, rc.m) y;

INSERT INTO dmarcd.dkim_results (domain, report_begin, report, idx, n,
    auth_domain, selector, result)
SELECT rc.name, rc.begin_time, i.id, rc.idx, 1,
    bench.fill(p.dkim_d, rc.name, rc.n, rc.m), 's1', p.dkim_res
FROM bench.recs rc JOIN bench.profiles p ON p.no = rc.profile
JOIN bench.ids i ON i.k = rc.k
WHERE p.dkim_d <> '';

INSERT INTO dmarcd.spf_results (domain, report_begin, report, idx, n,
    auth_domain, scope, result)
SELECT rc.name, rc.begin_time, i.id, rc.idx, 1,
    bench.fill(p.spf_d, rc.name, rc.n, rc.m), 'mfrom', p.spf_res
FROM bench.recs rc JOIN bench.profiles p ON p.no = rc.profile
JOIN bench.ids i ON i.k = rc.k;

-- The rollup, by ingest's own SQL path, a few thousand reports a call.
SELECT count(*) AS chunks FROM (SELECT dmarcd.rollup_add(array_agg(r.name),
    array_agg(i.id), array_agg(r.begin_time))
    FROM bench.reports r JOIN bench.ids i ON i.k = r.k
    GROUP BY r.k / 5000) c \gset
-- Appended (sql/0014_rollup_append.sql): compacted, as a deployment's
-- rollup is but for its last hour.
DO $$ BEGIN
	LOOP
		EXIT WHEN (SELECT pairs FROM dmarcd.rollup_compact(5000)) = 0;
	END LOOP;
END $$;

-- A few platforms, unless sql/platforms.tsv brought them already.
INSERT INTO dmarcd.platforms (name, kind, spf_fix, dkim_fix) VALUES
 ('Google Workspace', 'mailbox', 'Include _spf.google.com.',
  'Turn on DKIM signing in the Admin console.'),
 ('Microsoft 365', 'mailbox', 'Include spf.protection.outlook.com.',
  'Publish the selector1/selector2 CNAMEs and enable DKIM.'),
 ('SendGrid', 'esp', 'Set up domain authentication (custom return path).',
  'Set up domain authentication (CNAMEs for s1/s2).'),
 ('Mailchimp', 'esp', 'Mailchimp uses its own return path.',
  'Authenticate your domain (CNAMEs k2/k3).'),
 ('Amazon SES', 'esp', 'Use a custom MAIL FROM domain.',
  'Use Easy DKIM for <domain>.')
ON CONFLICT DO NOTHING;
INSERT INTO dmarcd.sender_rules (kind, suffix, platform) VALUES
 ('ptr', 'google.com', 'Google Workspace'),
 ('ptr', 'outbound.protection.outlook.com', 'Microsoft 365'),
 ('ptr', 'sendgrid.net', 'SendGrid'), ('dkim', 'sendgrid.net', 'SendGrid'),
 ('spf', 'sendgrid.net', 'SendGrid'),
 ('ptr', 'mcsv.net', 'Mailchimp'), ('spf', 'mcsv.net', 'Mailchimp'),
 ('ptr', 'amazonses.com', 'Amazon SES'),
 ('dkim', 'amazonses.com', 'Amazon SES'),
 ('spf', 'amazonses.com', 'Amazon SES')
ON CONFLICT DO NOTHING;

-- What dmarcd resolve stores: the PTR of each address (forward-confirmed
-- or not), and the organizational domain of each DKIM and SPF domain.
INSERT INTO dmarcd.ip_names (ip, ptr, names, confirmed, org, status,
    expires_at)
SELECT DISTINCT ON (s.ip) s.ip,
    CASE WHEN p.confirmed THEN bench.fill(p.ptr, d.name, s.n, s.m) ELSE ''
	END,
    CASE WHEN p.ptr <> '' THEN ARRAY[bench.fill(p.ptr, d.name, s.n, s.m)]
	ELSE '{}' END,
    p.confirmed,
    CASE WHEN p.confirmed THEN substring(bench.fill(p.ptr, d.name, s.n,
	s.m) FROM '([^.]+\.[^.]+)$') ELSE '' END,
    CASE WHEN p.ptr = '' THEN 'nxdomain' WHEN p.confirmed THEN 'ok'
	ELSE 'unconfirmed' END,
    now() + interval '30 days'
FROM bench.sources s JOIN bench.profiles p ON p.no = s.profile
JOIN bench.domains d ON d.no = s.dom
ORDER BY s.ip, s.src;

INSERT INTO dmarcd.domain_orgs (domain, org)
SELECT DISTINCT x.d, substring(x.d FROM '([^.]+\.[^.]+)$')
FROM (SELECT dkim_domain AS d FROM dmarcd.rollup_daily UNION
    SELECT spf_domain FROM dmarcd.rollup_daily) x
WHERE x.d <> ''
ON CONFLICT DO NOTHING;

-- One big report (for the rollup cost at ingest): n records of dom1's
-- kinds of source, each from its own address of the kind's block.
CREATE FUNCTION bench.big_xml(nrec integer) RETURNS text LANGUAGE sql AS $$
	SELECT '<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>big.test</org_name>
<email>dmarc@big.test</email><report_id>big-' || nrec || '</report_id>
<date_range><begin>1735603200</begin><end>1735689600</end></date_range>
</report_metadata><policy_published><domain>' || d.name || '</domain>
<adkim>r</adkim><aspf>r</aspf><p>' || d.p || '</p><pct>100</pct>
</policy_published>' || string_agg(format('<record><row>
<source_ip>%s</source_ip><count>%s</count><policy_evaluated>
<disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf>%s
</policy_evaluated></row><identifiers><header_from>%s</header_from>
</identifiers><auth_results>%s<spf><domain>%s</domain><scope>mfrom</scope>
<result>%s</result></spf></auth_results></record>',
	    host(coalesce(p.pool, '100.64.0.0'::inet) + (hashint8extended(i, 40)
		& 9223372036854775807) % greatest(p.pool_size, 64)),
	    1 + (hashint8extended(i, 41) & 1023) % p.scale,
	    CASE WHEN p.pe_dkim = 'pass' OR p.pe_spf = 'pass' THEN 'none'
		ELSE d.p END, p.pe_dkim, p.pe_spf,
	    CASE WHEN p.reason IS NOT NULL THEN
		format('<reason><type>%s</type></reason>', p.reason) ELSE ''
		END,
	    bench.fill(p.hf, d.name, 1, s.m),
	    CASE WHEN p.dkim_d <> '' THEN format('<dkim><domain>%s</domain>'
		'<selector>s1</selector><result>%s</result></dkim>',
		bench.fill(p.dkim_d, d.name, 1, s.m), p.dkim_res) ELSE '' END,
	    bench.fill(p.spf_d, d.name, 1, s.m), p.spf_res), '
' ORDER BY i) || '</feedback>
'
	FROM generate_series(1, nrec) i
	JOIN bench.domains d ON d.no = 1
	JOIN bench.nslots ns ON ns.dom = 1
	JOIN bench.slots sl ON sl.dom = 1 AND sl.slot =
	    (hashint8extended(i, 42) & 2147483647) % ns.n
	JOIN bench.sources s ON s.src = sl.src
	JOIN bench.profiles p ON p.no = s.profile
	GROUP BY d.name, d.p
$$;

DROP TABLE bench.recs;
VACUUM (ANALYZE) dmarcd.reports, dmarcd.records, dmarcd.rollup_daily,
    dmarcd.policy_published, dmarcd.ip_names, dmarcd.domain_orgs;
\endif
