-- 0010_api_raw: the raw download of the HTTP API (GET
-- /v1/reports/{domain}/{id}/raw).
--
-- dmarcd_reader, the API's role, cannot read raw_inputs nor raw_chunks
-- (0002_roles): a rejected input or a mail may hold more than report
-- data, and Grafana has no business there. Rather than grant it the
-- tables, or give the API a second, stronger connection, this function
-- hands out exactly one thing: chunk p_seq of the raw input that the
-- aggregate report (p_domain, p_report) was stored from, with how it is
-- stored and its size as received. Nothing of rejected inputs, nothing
-- by hash. SECURITY DEFINER runs it with its owner's rights (the role
-- that ran dmarcd migrate), with a fixed search_path.
--
-- No row: no such report, or its raw input is not kept. data NULL: p_seq
-- is past the last chunk.
CREATE FUNCTION dmarcd.report_raw(p_domain text, p_report bigint,
    p_seq integer)
RETURNS TABLE (encoding text, size bigint, data bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, dmarcd AS $$
	SELECT w.encoding, w.size, c.data
	FROM dmarcd.reports r
	JOIN dmarcd.raw_inputs w ON w.domain = r.domain AND
	    w.sha256 = r.raw_sha256
	LEFT JOIN dmarcd.raw_chunks c ON c.domain = w.domain AND
	    c.sha256 = w.sha256 AND c.seq = p_seq
	WHERE r.domain = p_domain AND r.id = p_report AND
	    r.payload_sha256 IS NOT NULL
$$;
REVOKE ALL ON FUNCTION dmarcd.report_raw(text, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dmarcd.report_raw(text, bigint, integer)
    TO dmarcd_reader, dmarcd_ingest;
