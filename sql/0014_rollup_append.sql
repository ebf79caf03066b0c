-- 0014_rollup_append: dmarcd.rollup_daily is appended to at ingest, and
-- compacted later, instead of upserted.
--
-- An upsert (INSERT ... ON CONFLICT DO UPDATE) on the eleven-column key
-- cost twice a plain insert, and was most of the rollup's share of ingest
-- (issue 6: at most 15%). Now:
--
--   * ingest appends each report's rows (COPY for small reports, a
--     statement per slice for big ones, rollup_add() here for the rest)
--     and marks the (domain, day) pairs it touched in dmarcd.rollup_dirty,
--     in the report's own transaction;
--   * dmarcd.rollup_compact() merges the rows of marked pairs that share a
--     key into one and drops those that add up to 0 (a revision's rows
--     taken away), in a transaction of its own. dmarcd ingest and fetch
--     (at their end), run (every few minutes) and resolve do it for pairs
--     marked an hour ago or more, so that a day still receiving reports
--     is not read again after every one; dmarcd compact does it for all.
--
-- Every reader adds rollup rows up by key (sum(messages)), so the answers
-- are the same before and after compaction: until then a key may only
-- have more than one row. Compaction is safe beside ingest and beside
-- another compaction: it deletes rows it sees and inserts their sum in
-- one statement; a row another one deleted first is skipped, and rows and
-- marks committed meanwhile wait for the next.
--
-- header_from is folded to lower case in ASCII only, by every path alike
-- (DNS names compare case-insensitively in ASCII only, RFC 4343): the C
-- paths fold it themselves, so that small reports' rows go in by COPY.

ALTER TABLE dmarcd.rollup_daily DROP CONSTRAINT rollup_daily_key;
CREATE INDEX rollup_daily_domain_day ON dmarcd.rollup_daily (domain, day);

-- (domain, day) pairs with rows not compacted yet. No key: two ingests
-- marking the same pair must not wait for each other.
CREATE TABLE dmarcd.rollup_dirty (
	domain		text NOT NULL,
	day		date NOT NULL,
	marked_at	timestamptz NOT NULL DEFAULT now()
);
GRANT INSERT ON dmarcd.rollup_dirty TO dmarcd_ingest;
GRANT SELECT ON dmarcd.rollup_dirty TO dmarcd_reader;

-- rollup_add, as in 0007, appending, with its marks.
CREATE OR REPLACE FUNCTION dmarcd.rollup_add(domains text[], ids bigint[],
    begins timestamptz[], sign integer DEFAULT 1) RETURNS void
LANGUAGE sql AS $$
	WITH d AS MATERIALIZED (
		SELECT k.domain, k.id, k.begin_time, x.day, x.lo, x.hi, x.total
		FROM unnest(domains, ids, begins) AS k(domain, id, begin_time)
		JOIN dmarcd.reports rp ON rp.domain = k.domain AND rp.id = k.id
		CROSS JOIN LATERAL dmarcd.report_days(rp.begin_time,
		    rp.end_time) x),
	m AS (INSERT INTO dmarcd.rollup_dirty (domain, day)
		SELECT DISTINCT d.domain, d.day FROM d)
	INSERT INTO dmarcd.rollup_daily (domain, day, source_ip,
	    header_from, dkim_aligned, spf_aligned, disposition, auth,
	    dkim_domain, spf_domain, override, messages)
	SELECT r.domain, d.day, r.source_ip,
	    coalesce(translate(r.header_from, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
		'abcdefghijklmnopqrstuvwxyz'), ''),
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
$$;

-- rollup_compact - compact the rows of at most p_pairs (domain, day)
-- pairs first marked p_age ago or more: the rows of one key become one
-- row with their sum, a sum of 0 none. Returns the pairs taken (0:
-- nothing left to do), the rows deleted and inserted, and the domains
-- whose rows changed: they are notified (0013: the API's kept answers),
-- though no sum changed. SECURITY DEFINER: the ingest role appends to
-- the rollup, and deletes from it only through here.
CREATE FUNCTION dmarcd.rollup_compact(p_pairs integer DEFAULT 200,
    p_age interval DEFAULT '0', OUT pairs bigint, OUT deleted bigint,
    OUT inserted bigint, OUT domains bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, dmarcd
SET work_mem = '64MB' AS $$
	WITH p AS MATERIALIZED (
		SELECT domain, day FROM dmarcd.rollup_dirty
		GROUP BY domain, day HAVING min(marked_at) <= now() - p_age
		ORDER BY domain, day LIMIT greatest(p_pairs, 1)),
	-- The pairs whose marks this call took (another call may have
	-- taken some first).
	m AS (DELETE FROM dmarcd.rollup_dirty x USING p
		WHERE x.domain = p.domain AND x.day = p.day
		RETURNING x.domain, x.day),
	q AS MATERIALIZED (SELECT DISTINCT domain, day FROM m),
	g AS MATERIALIZED (
		SELECT unnest(array_agg(r.ctid)) AS t
		FROM q JOIN dmarcd.rollup_daily r ON r.domain = q.domain AND
		    r.day = q.day
		GROUP BY r.domain, r.day, r.source_ip, r.header_from,
		    r.dkim_aligned, r.spf_aligned, r.disposition, r.auth,
		    r.dkim_domain, r.spf_domain, r.override
		HAVING count(*) > 1 OR sum(r.messages) = 0),
	d AS MATERIALIZED (DELETE FROM dmarcd.rollup_daily
		WHERE ctid = ANY (ARRAY(SELECT t FROM g))
		RETURNING *),
	i AS (INSERT INTO dmarcd.rollup_daily (domain, day, source_ip,
		    header_from, dkim_aligned, spf_aligned, disposition, auth,
		    dkim_domain, spf_domain, override, messages)
		SELECT domain, day, source_ip, header_from, dkim_aligned,
		    spf_aligned, disposition, auth, dkim_domain, spf_domain,
		    override, sum(messages)
		FROM d GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
		HAVING sum(messages) <> 0
		RETURNING domain),
	n AS (SELECT count(pg_notify('dmarcd_data', x.domain)) AS n
		FROM (SELECT DISTINCT domain FROM d) x)
	SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM d),
	    (SELECT count(*) FROM i), (SELECT n FROM n)
$$;
REVOKE ALL ON FUNCTION dmarcd.rollup_compact(integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dmarcd.rollup_compact(integer, interval) TO dmarcd_ingest;

-- source_rows, as in 0008, reading the rollup added up by key: rows
-- appended and not compacted yet count as one.
--
-- The rollup rows of a domain over days [since, until), with their class,
-- sender and platform. A sender depends only on the row's address, its
-- DKIM and SPF domains and whether they pass: it is worked out once for
-- each such key (k, a few dozen for thousands of rows, looked up by
-- index), not once per row.
CREATE OR REPLACE FUNCTION dmarcd.source_rows(p_domain text, p_since date,
    p_until date)
RETURNS TABLE (day date, source_ip inet, header_from text,
    disposition text, auth smallint, receiver_pass boolean,
    dkim_domain text, spf_domain text, override text, messages bigint,
    class text, sender text, platform text, ptr text)
LANGUAGE sql STABLE AS $$
	WITH r AS MATERIALIZED (
		SELECT r.day, r.source_ip, r.header_from, r.disposition,
		    r.auth, r.dkim_aligned OR r.spf_aligned AS receiver_pass,
		    r.dkim_domain, r.spf_domain, r.override, r.messages,
		    coalesce(r.source_ip::text, '') AS ipk, r.auth & 12 AS pb
		-- Rows not compacted yet, added up by key; a key whose rows
		-- add up to 0 (a revision took them away) is none.
		FROM (SELECT r.day, r.source_ip, r.header_from,
			r.disposition, r.auth, r.dkim_aligned, r.spf_aligned,
			r.dkim_domain, r.spf_domain, r.override,
			sum(r.messages)::bigint AS messages
		    FROM dmarcd.rollup_daily r
		    WHERE r.domain = lower(p_domain) AND r.day >= p_since AND
			r.day < p_until
		    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
		    HAVING sum(r.messages) <> 0) r),
	k AS MATERIALIZED (
		SELECT k.ipk, k.pb, k.dkim_domain, k.spf_domain,
		    coalesce(pl.platform, nullif((k.n).org, ''),
			nullif((k.n).ptr, ''),
			CASE WHEN k.pb & 4 <> 0 THEN coalesce((k.dorg).org,
			    nullif(k.dkim_domain, '')) END,
			CASE WHEN k.pb & 8 <> 0 THEN coalesce((k.sorg).org,
			    nullif(k.spf_domain, '')) END,
			dmarcd.network_of(k.source_ip)) AS sender,
		    pl.platform, (k.n).ptr
		-- The names by key lookups (subqueries), whatever the sizes
		-- of ip_names and domain_orgs.
		FROM (SELECT k.*,
		    (SELECT n FROM dmarcd.ip_names n WHERE
			n.ip = k.source_ip AND n.confirmed) AS n,
		    (SELECT o FROM dmarcd.domain_orgs o WHERE
			o.domain = k.dkim_domain) AS dorg,
		    (SELECT o FROM dmarcd.domain_orgs o WHERE
			o.domain = k.spf_domain) AS sorg
		    FROM (SELECT DISTINCT r.ipk, r.source_ip, r.pb,
			r.dkim_domain, r.spf_domain FROM r) k
		    OFFSET 0) k -- each lookup once
		-- A name dmarcd resolve has not seen yet is looked up here.
		CROSS JOIN LATERAL (SELECT coalesce((k.n).platform,
		    CASE WHEN k.pb & 4 <> 0 AND k.dkim_domain <> '' THEN
			CASE WHEN (k.dorg).domain IS NULL THEN
			    dmarcd.platform_of('dkim', k.dkim_domain)
			ELSE (k.dorg).dkim_platform END END,
		    CASE WHEN k.pb & 8 <> 0 AND k.spf_domain <> '' THEN
			CASE WHEN (k.sorg).domain IS NULL THEN
			    dmarcd.platform_of('spf', k.spf_domain)
			ELSE (k.sorg).spf_platform END END) AS platform) pl)
	SELECT r.day, r.source_ip, r.header_from, r.disposition, r.auth,
	    r.receiver_pass, r.dkim_domain, r.spf_domain, r.override,
	    r.messages, dmarcd.message_class(r.auth, r.override), k.sender,
	    k.platform, k.ptr
	FROM r JOIN k ON k.ipk = r.ipk AND k.pb = r.pb AND
	    k.dkim_domain = r.dkim_domain AND k.spf_domain = r.spf_domain
$$;
