-- 0016_compact_remark: a compaction that lost a race marks the pair again.
--
-- Two compactions of one (domain, day) pair can overlap: A takes the
-- pair's marks and deletes its rows r1, r2 of a key; meanwhile an ingest
-- commits a row r3 of the same key and a new mark; B, whose snapshot is
-- older than A's commit, takes that mark, waits for A, skips r1 and r2
-- (A deleted them), deletes r3 and inserts it again as B's sum. The key
-- then has two rows, A's and B's, and no mark left to merge them: the
-- sums stay right (every reader adds rows up by key) but the rows are
-- never compacted. 0014 said "a row another one deleted first is
-- skipped"; now the pair of any skipped row is marked again, with the
-- earliest time of the marks taken, so the next call merges it (the
-- rows A inserted are committed by then).

CREATE OR REPLACE FUNCTION dmarcd.rollup_compact(p_pairs integer DEFAULT 200,
    p_age interval DEFAULT '0', OUT pairs bigint, OUT deleted bigint,
    OUT inserted bigint, OUT domains bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, dmarcd, pg_temp
SET work_mem = '64MB' AS $$
	WITH p AS MATERIALIZED (
		SELECT domain, day FROM dmarcd.rollup_dirty
		GROUP BY domain, day HAVING min(marked_at) <= now() - p_age
		ORDER BY domain, day LIMIT greatest(p_pairs, 1)),
	-- The pairs whose marks this call took (another call may have
	-- taken some first).
	m AS MATERIALIZED (DELETE FROM dmarcd.rollup_dirty x USING p
		WHERE x.domain = p.domain AND x.day = p.day
		RETURNING x.domain, x.day, x.marked_at),
	q AS MATERIALIZED (SELECT domain, day, min(marked_at) AS marked_at
		FROM m GROUP BY domain, day),
	g AS MATERIALIZED (
		SELECT r.domain, r.day, unnest(array_agg(r.ctid)) AS t
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
	-- Pairs with rows this call saw but could not delete: another
	-- compaction took them; mark the pair again.
	s AS (INSERT INTO dmarcd.rollup_dirty (domain, day, marked_at)
		SELECT q.domain, q.day, q.marked_at
		FROM q JOIN (SELECT domain, day, count(*) AS n FROM g
		    GROUP BY domain, day) gn ON gn.domain = q.domain AND
		    gn.day = q.day
		LEFT JOIN (SELECT domain, day, count(*) AS n FROM d
		    GROUP BY domain, day) dn ON dn.domain = q.domain AND
		    dn.day = q.day
		WHERE coalesce(dn.n, 0) < gn.n),
	n AS (SELECT count(pg_notify('dmarcd_data', x.domain)) AS n
		FROM (SELECT DISTINCT domain FROM d) x)
	SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM d),
	    (SELECT count(*) FROM i),
	    (SELECT n FROM n)
$$;
REVOKE ALL ON FUNCTION dmarcd.rollup_compact(integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dmarcd.rollup_compact(integer, interval) TO dmarcd_ingest;
