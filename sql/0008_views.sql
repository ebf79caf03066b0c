-- 0008_views: the analytics dmarcd summary|sources|readiness, the API and
-- Grafana read. Everything here reads dmarcd.rollup_daily (one row per
-- domain, day, source and verdict), never the records.
--
-- Each rollup row falls in one message class (dmarcd.message_class):
--
--   aligned       DMARC passes by dmarcd's own reckoning (auth bits 1|2)
--   forwarded     the receiver overrode for forwarding (forwarded,
--                 mailing_list, trusted_forwarder); or DKIM aligned and
--                 passing while SPF for the domain's own envelope fails
--                 (relayed with DKIM intact); or a signature of the
--                 domain's own that failed (broken in transit)
--   unaligned     SPF or DKIM passes, but for another domain: fixable
--   unauthorised  nothing passes
--
-- Sources are grouped into senders (dmarcd.source_rows): the platform
-- when one is known (sql/sender_rules.tsv: by forward-confirmed PTR, or a
-- passing DKIM d= or SPF domain), else the organizational domain of the
-- confirmed PTR, of the passing d=, of the passing SPF domain, else the
-- network (/24, /48). A sender's class is the class of most of its mail.

-- The auth bits (common/align.h) by name.
CREATE FUNCTION dmarcd.message_class(auth smallint, override text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
	    WHEN override IN ('forwarded', 'mailing_list', 'trusted_forwarder')
		THEN 'forwarded'
	    WHEN auth & 1 <> 0 AND auth & 16 <> 0 AND auth & 8 = 0
		THEN 'forwarded'
	    WHEN auth & 3 <> 0 THEN 'aligned'
	    WHEN auth & 32 <> 0 THEN 'forwarded'
	    WHEN auth & 12 <> 0 THEN 'unaligned'
	    ELSE 'unauthorised' END
$$;

-- A name and each of its parent domains: a.b.c -> {a.b.c, b.c, c}.
CREATE FUNCTION dmarcd.domain_suffixes(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(array_agg(array_to_string(l[i:], '.') ORDER BY i),
	    '{}')
	FROM (SELECT string_to_array(rtrim(lower(name), '.'), '.') AS l) s,
	    generate_subscripts(s.l, 1) AS i
	WHERE name IS NOT NULL AND name <> ''
$$;

-- The platform of a PTR name, d= or SPF domain: the longest matching
-- suffix in sender_rules, looked up by key.
CREATE OR REPLACE FUNCTION dmarcd.platform_of(kind text, name text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT r.platform FROM dmarcd.sender_rules r
	WHERE r.kind = platform_of.kind AND
	    r.suffix = ANY (dmarcd.domain_suffixes(platform_of.name))
	ORDER BY length(r.suffix) DESC LIMIT 1
$$;

-- The platforms of names are worked out once, when a name is stored
-- (dmarcd resolve), not on every read: ip_names.platform by the confirmed
-- PTR, domain_orgs.dkim_platform and spf_platform by the domain.
-- dmarcd.refresh_platforms() redoes them all when sender_rules change.
ALTER TABLE dmarcd.ip_names ADD COLUMN platform text;
ALTER TABLE dmarcd.domain_orgs ADD COLUMN dkim_platform text,
    ADD COLUMN spf_platform text;

CREATE FUNCTION dmarcd.ip_names_platform() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.platform := CASE WHEN NEW.confirmed AND NEW.ptr <> '' THEN
	    dmarcd.platform_of('ptr', NEW.ptr) END;
	RETURN NEW;
END $$;
CREATE TRIGGER ip_names_platform BEFORE INSERT OR UPDATE ON dmarcd.ip_names
    FOR EACH ROW EXECUTE FUNCTION dmarcd.ip_names_platform();

CREATE FUNCTION dmarcd.domain_orgs_platform() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.dkim_platform := dmarcd.platform_of('dkim', NEW.domain);
	NEW.spf_platform := dmarcd.platform_of('spf', NEW.domain);
	RETURN NEW;
END $$;
CREATE TRIGGER domain_orgs_platform BEFORE INSERT OR UPDATE
    ON dmarcd.domain_orgs
    FOR EACH ROW EXECUTE FUNCTION dmarcd.domain_orgs_platform();

CREATE FUNCTION dmarcd.refresh_platforms() RETURNS void
LANGUAGE sql AS $$
	UPDATE dmarcd.ip_names SET platform = NULL;	-- the trigger redoes it
	UPDATE dmarcd.domain_orgs SET dkim_platform = NULL;
$$;

-- The network a source without a name is grouped under.
CREATE FUNCTION dmarcd.network_of(ip inet) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN ip IS NULL THEN 'unknown'
	    WHEN family(ip) = 4 THEN network(set_masklen(ip, 24))::text
	    ELSE network(set_masklen(ip, 48))::text END
$$;

-- The UTC days [since, until) covers: until's day counts when until is
-- past its midnight.
CREATE FUNCTION dmarcd.day_of(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT (t AT TIME ZONE 'UTC')::date
$$;
CREATE FUNCTION dmarcd.day_after(t timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT ((t AT TIME ZONE 'UTC') - interval '1 microsecond')::date + 1
$$;

-- The rollup rows of a domain over days [since, until), with their class,
-- sender and platform. A sender depends only on the row's address, its
-- DKIM and SPF domains and whether they pass: it is worked out once for
-- each such key (k, a few dozen for thousands of rows, looked up by
-- index), not once per row.
CREATE FUNCTION dmarcd.source_rows(p_domain text, p_since date,
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
		FROM dmarcd.rollup_daily r
		WHERE r.domain = lower(p_domain) AND r.day >= p_since AND
		    r.day < p_until AND r.messages <> 0),
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

-- For Grafana: every domain's rollup by day and sender, with the verdicts
-- spelled out. Filter on domain and day.
CREATE VIEW dmarcd.source_days AS
	SELECT d.domain, s.day, s.sender, s.platform, s.class,
	    s.source_ip, s.ptr, s.header_from, s.disposition,
	    s.auth & 3 <> 0 AS dmarc_pass, s.receiver_pass,
	    s.auth & 1 <> 0 AS dkim_aligned, s.auth & 2 <> 0 AS spf_aligned,
	    s.auth & 4 <> 0 AS dkim_pass, s.auth & 8 <> 0 AS spf_pass,
	    s.auth & 64 <> 0 AS guessed, s.dkim_domain, s.spf_domain,
	    s.override, s.messages
	FROM (SELECT DISTINCT domain, min(day) AS lo, max(day) AS hi
	    FROM dmarcd.rollup_daily GROUP BY domain) d
	CROSS JOIN LATERAL dmarcd.source_rows(d.domain, d.lo, d.hi + 1) s;

-- The newest policy a domain published, as its latest report saw it.
-- The newest report first (reports_time backwards, stopping at the first
-- with a policy), then its policy: joined first, a generic plan merged
-- every report of the domain with its policy to keep one.
CREATE FUNCTION dmarcd.policy_of(p_domain text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	RETURN (SELECT jsonb_strip_nulls(jsonb_build_object('p', pp.p,
	        'sp', pp.sp, 'np', pp.np, 'pct', pp.pct,
	        'adkim', coalesce(pp.adkim, 'r'),
	        'aspf', coalesce(pp.aspf, 'r'), 'testing', pp.testing,
	        'discovery_method', pp.discovery_method, 'fo', pp.fo,
	        'seen', r.begin_time, 'reporter', r.org_name))
	    FROM (SELECT r.domain, r.id, r.begin_time, r.org_name
		FROM dmarcd.reports r
		WHERE r.domain = lower(p_domain) AND EXISTS (SELECT 1
		    FROM dmarcd.policy_published pp WHERE
		    pp.domain = r.domain AND pp.report = r.id)
		ORDER BY r.begin_time DESC, r.id DESC LIMIT 1) r
	    JOIN dmarcd.policy_published pp ON pp.domain = r.domain AND
	        pp.report = r.id);
END $$;

-- What a sender must change for its mail to align (NULL: nothing), as
-- {"summary", "steps": [{"mechanism", "problem", "action"}], "url"}: the
-- platform's own instructions when it is known (sql/platforms.tsv, with
-- <domain> filled in), general ones otherwise.
CREATE FUNCTION dmarcd.fix_for(p_domain text, p_class text,
    p_platform text, dk_al bigint, sp_al bigint, dk_un bigint,
    sp_un bigint, failing bigint, messages bigint)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
	pf dmarcd.platforms%ROWTYPE;
	steps jsonb := '[]';
	who text := coalesce(p_platform, 'this sender');
BEGIN
	IF p_platform IS NOT NULL THEN
		SELECT * INTO pf FROM dmarcd.platforms WHERE name = p_platform;
	END IF;
	IF p_class = 'unauthorised' THEN
		RETURN jsonb_build_object('summary', format('Nothing '
		    'authenticates %s''s mail as %s. If it is yours, set up '
		    'DKIM signing with %s and cover it in SPF; if not, it is '
		    'spoofing, which p=quarantine or p=reject stops.', who,
		    p_domain, p_domain), 'steps', steps);
	END IF;
	IF p_class = 'forwarded' THEN
		RETURN jsonb_build_object('summary', format('Forwarded or '
		    'mailing-list traffic: SPF cannot pass through a forwarder, '
		    'so this mail relies on an intact DKIM signature of %s. '
		    'Sign all your mail with DKIM for %s; if %s is your own '
		    'service rather than a forwarder, add it to SPF.', p_domain,
		    p_domain, who), 'steps', steps);
	END IF;
	IF failing = 0 THEN
		RETURN NULL;
	END IF;
	-- A step for each mechanism that does not align all the mail.
	IF dk_al < messages THEN
		steps := steps || jsonb_build_object('mechanism', 'dkim',
		    'problem', CASE WHEN dk_un > 0 THEN format('DKIM passes, '
			'but for the platform''s domain, not %s', p_domain)
			ELSE format('no DKIM signature of %s passes', p_domain)
			END,
		    'action', replace(coalesce(pf.dkim_fix, format('Have %s '
			'sign with your domain: publish its DKIM key (or the '
			'CNAMEs it gives) under a selector of <domain> and turn '
			'signing on, so that mail carries d=<domain>.', who)),
			'<domain>', p_domain));
	END IF;
	IF sp_al < messages THEN
		steps := steps || jsonb_build_object('mechanism', 'spf',
		    'problem', CASE WHEN sp_un > 0 THEN format('SPF passes, '
			'but for the envelope domain of the platform, not %s',
			p_domain) ELSE format('SPF does not pass for %s',
			p_domain) END,
		    'action', replace(coalesce(pf.spf_fix, format('Use a custom '
			'MAIL FROM (return path) on a subdomain of <domain>, '
			'e.g. bounce.<domain>, with an SPF record that covers '
			'%s.', who)), '<domain>', p_domain));
	END IF;
	RETURN jsonb_strip_nulls(jsonb_build_object('summary',
	    format('%s of %s messages from %s fail DMARC: SPF or DKIM '
	    'passes, but not for %s. Either fix below makes them pass; DKIM '
	    'is the one that survives forwarding.', failing, messages, who,
	    p_domain) || CASE WHEN pf.name IS NULL AND p_class = 'unaligned'
	    THEN ' dmarcd does not know this sender: if it is not yours, its '
	    'mail is not legitimate, and enforcement is what stops it.'
	    ELSE '' END, 'steps', steps, 'url', nullif(pf.url, '')));
END $$;

-- A sender's class: the class of most of its mail (ties: aligned, then
-- unaligned, then forwarded).
CREATE FUNCTION dmarcd.sender_class(c_al bigint, c_fw bigint, c_un bigint,
    c_ua bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE greatest(coalesce(c_al, 0), coalesce(c_fw, 0),
	    coalesce(c_un, 0), coalesce(c_ua, 0))
	    WHEN coalesce(c_al, 0) THEN 'aligned'
	    WHEN coalesce(c_un, 0) THEN 'unaligned'
	    WHEN coalesce(c_fw, 0) THEN 'forwarded'
	    ELSE 'unauthorised' END
$$;

-- fix_for() when it can say something: aligned and unaligned senders
-- with nothing failing need no fix (NULL), without a call.
CREATE FUNCTION dmarcd.fix_if(p_domain text, p_class text,
    p_platform text, dk_al bigint, sp_al bigint, dk_un bigint,
    sp_un bigint, failing bigint, messages bigint)
RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_class IN ('aligned', 'unaligned') AND failing = 0
	    THEN NULL ELSE dmarcd.fix_for(p_domain, p_class, p_platform,
	    dk_al, sp_al, dk_un, sp_un, failing, messages) END
$$;

-- Per sender over days [since, until): its messages by class and what
-- passed, with the fix it needs. The rows sources() and readiness() use.
CREATE FUNCTION dmarcd.sender_stats(p_domain text, p_since date,
    p_until date)
RETURNS TABLE (sender text, platform text, class text, messages bigint,
    dmarc_pass bigint, receiver_pass bigint, failing bigint,
    aligned bigint, forwarded bigint, unaligned bigint,
    unauthorised bigint, dkim_aligned bigint, spf_aligned bigint,
    dkim_unaligned_pass bigint, spf_unaligned_pass bigint,
    first_day date, last_day date, days bigint, ips bigint,
    top_ips jsonb, header_froms jsonb, dkim_domains jsonb,
    spf_domains jsonb, fix jsonb)
LANGUAGE sql STABLE AS $$
	WITH r AS MATERIALIZED (
		SELECT * FROM dmarcd.source_rows(p_domain, p_since, p_until)),
	s AS (
		SELECT r.sender, max(r.platform) AS platform,
		    (sum(r.messages))::bigint AS messages,
		    (sum(r.messages) FILTER (WHERE r.auth & 3 <> 0))::bigint AS dpass,
		    (sum(r.messages) FILTER (WHERE r.receiver_pass))::bigint AS rpass,
		    (sum(r.messages) FILTER (WHERE r.class = 'aligned'))::bigint AS c_al,
		    (sum(r.messages) FILTER (WHERE r.class = 'forwarded'))::bigint
			AS c_fw,
		    (sum(r.messages) FILTER (WHERE r.class = 'unaligned'))::bigint
			AS c_un,
		    (sum(r.messages) FILTER (WHERE r.class = 'unauthorised'))::bigint
			AS c_ua,
		    (sum(r.messages) FILTER (WHERE r.auth & 1 <> 0))::bigint AS dk_al,
		    (sum(r.messages) FILTER (WHERE r.auth & 2 <> 0))::bigint AS sp_al,
		    (sum(r.messages) FILTER (WHERE r.auth & 4 <> 0 AND
			r.auth & 1 = 0))::bigint AS dk_un,
		    (sum(r.messages) FILTER (WHERE r.auth & 8 <> 0 AND
			r.auth & 2 = 0))::bigint AS sp_un,
		    min(r.day) AS first_day, max(r.day) AS last_day
		FROM r GROUP BY r.sender),
	-- per sender and address, and per sender and day (grouped by
	-- hashing: count(DISTINCT) sorts, and sorting text costs more)
	ip AS MATERIALIZED (
		SELECT r.sender, r.source_ip, max(r.ptr) AS ptr,
		    sum(r.messages)::bigint AS m
		FROM r GROUP BY 1, 2),
	nd AS (
		SELECT d.sender, count(*) AS days
		FROM (SELECT r.sender FROM r GROUP BY r.sender, r.day) d
		GROUP BY d.sender),
	ni AS (
		SELECT ip.sender, count(ip.source_ip) AS ips
		FROM ip GROUP BY ip.sender),
	c AS (
		SELECT s.*, nd.days, ni.ips, dmarcd.sender_class(s.c_al,
		    s.c_fw, s.c_un, s.c_ua) AS class
		FROM s JOIN nd ON nd.sender = s.sender
		JOIN ni ON ni.sender = s.sender)
	SELECT c.sender, c.platform, c.class, c.messages,
	    coalesce(c.dpass, 0), coalesce(c.rpass, 0),
	    c.messages - coalesce(c.dpass, 0),
	    coalesce(c.c_al, 0), coalesce(c.c_fw, 0), coalesce(c.c_un, 0),
	    coalesce(c.c_ua, 0), coalesce(c.dk_al, 0), coalesce(c.sp_al, 0),
	    coalesce(c.dk_un, 0), coalesce(c.sp_un, 0),
	    c.first_day, c.last_day, c.days, c.ips,
	    ti.j, th.j, td.j, ts.j,
	    dmarcd.fix_if(lower(p_domain), c.class,
		coalesce(c.platform, c.sender),
		coalesce(c.dk_al, 0), coalesce(c.sp_al, 0),
		coalesce(c.dk_un, 0), coalesce(c.sp_un, 0),
		c.messages - coalesce(c.dpass, 0), c.messages)
	FROM c
	LEFT JOIN (SELECT t.sender, jsonb_agg(jsonb_strip_nulls(
		jsonb_build_object('ip', t.ip, 'ptr', nullif(t.ptr, ''),
		'messages', t.m)) ORDER BY t.m DESC) AS j
	    FROM (SELECT ip.sender, host(ip.source_ip) AS ip, ip.ptr, ip.m,
		row_number() OVER (PARTITION BY ip.sender ORDER BY ip.m DESC,
		ip.source_ip::text) AS n
		FROM ip) t
	    WHERE t.n <= 5 GROUP BY t.sender) ti ON ti.sender = c.sender
	LEFT JOIN (SELECT t.sender, jsonb_agg(t.h ORDER BY t.m DESC) AS j
	    FROM (SELECT r.sender, r.header_from AS h,
		sum(r.messages)::bigint AS m, row_number() OVER (PARTITION BY
		r.sender ORDER BY sum(r.messages) DESC, r.header_from) AS n
		FROM r GROUP BY 1, 2) t
	    WHERE t.n <= 5 GROUP BY t.sender) th ON th.sender = c.sender
	LEFT JOIN (SELECT t.sender, jsonb_agg(jsonb_build_object('domain',
		t.d, 'pass', t.p, 'aligned', t.a, 'messages', t.m)
		ORDER BY t.m DESC) AS j
	    FROM (SELECT r.sender, r.dkim_domain AS d, r.auth & 4 <> 0 AS p,
		r.auth & 32 <> 0 AS a, sum(r.messages)::bigint AS m,
		row_number() OVER (PARTITION BY r.sender ORDER BY
		sum(r.messages) DESC, r.dkim_domain) AS n
		FROM r WHERE r.dkim_domain <> '' GROUP BY 1, 2, 3, 4) t
	    WHERE t.n <= 5 GROUP BY t.sender) td ON td.sender = c.sender
	LEFT JOIN (SELECT t.sender, jsonb_agg(jsonb_build_object('domain',
		t.d, 'pass', t.p, 'aligned', t.a, 'messages', t.m)
		ORDER BY t.m DESC) AS j
	    FROM (SELECT r.sender, r.spf_domain AS d, r.auth & 8 <> 0 AS p,
		r.auth & 16 <> 0 AS a, sum(r.messages)::bigint AS m,
		row_number() OVER (PARTITION BY r.sender ORDER BY
		sum(r.messages) DESC, r.spf_domain) AS n
		FROM r WHERE r.spf_domain <> '' GROUP BY 1, 2, 3, 4) t
	    WHERE t.n <= 5 GROUP BY t.sender) ts ON ts.sender = c.sender
$$;

-- summary(domain, since, until): the domain's mail over [since, until):
-- totals, dmarcd's verdict against the receivers', classes, disposition,
-- reporters and the published policy.
--
-- This, sources() and readiness() are PL/pgSQL: their statements are
-- planned once per session, not on every call as an SQL function's are
-- (planning cost more than running them). A generic plan always
-- (plan_cache_mode): a custom plan per domain is planning again on every
-- call, for the same plan. No JIT: compiling costs tens of milliseconds,
-- more than these queries take (it never pays off for one domain's rows).
CREATE FUNCTION dmarcd.summary(p_domain text, p_since timestamptz,
    p_until timestamptz) RETURNS jsonb LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
	RETURN (WITH r AS MATERIALIZED (
		SELECT * FROM dmarcd.source_rows(p_domain,
		    dmarcd.day_of(p_since), dmarcd.day_after(p_until))),
	t AS (
		SELECT coalesce(sum(messages), 0) AS messages,
		    coalesce(sum(messages) FILTER (WHERE auth & 3 <> 0), 0)
			AS dpass,
		    coalesce(sum(messages) FILTER (WHERE receiver_pass), 0)
			AS rpass,
		    coalesce(sum(messages) FILTER (WHERE auth & 3 <> 0 AND
			NOT receiver_pass), 0) AS ours_only,
		    coalesce(sum(messages) FILTER (WHERE auth & 3 = 0 AND
			receiver_pass), 0) AS theirs_only,
		    coalesce(sum(messages) FILTER (WHERE auth & 64 <> 0), 0)
			AS guessed,
		    coalesce(sum(messages) FILTER (WHERE auth & 1 <> 0), 0)
			AS dk_al,
		    coalesce(sum(messages) FILTER (WHERE auth & 4 <> 0), 0)
			AS dk_pass,
		    coalesce(sum(messages) FILTER (WHERE auth & 2 <> 0), 0)
			AS sp_al,
		    coalesce(sum(messages) FILTER (WHERE auth & 8 <> 0), 0)
			AS sp_pass,
		    -- (counted by hashing: sorting text costs more)
		    (SELECT count(*) FROM (SELECT 1 FROM r WHERE
			r.source_ip IS NOT NULL GROUP BY r.source_ip) z) AS ips,
		    (SELECT count(*) FROM (SELECT 1 FROM r GROUP BY r.sender) z)
			AS senders,
		    (SELECT count(*) FROM (SELECT 1 FROM r GROUP BY r.day) z)
			AS days
		FROM r),
	-- each sender's class, as sender_stats() has it
	c AS (
		SELECT dmarcd.sender_class(
		    (sum(r.messages) FILTER (WHERE
			r.class = 'aligned'))::bigint,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'forwarded'))::bigint,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'unaligned'))::bigint,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'unauthorised'))::bigint) AS class, (sum(r.messages))::bigint AS messages
		FROM r GROUP BY r.sender),
	-- The reports, each in its latest revision. A report's revisions
	-- share its begin_time, so they are all among these rows: the
	-- newest is found here, without a probe per report.
	rep AS (
		SELECT rp.org_name, count(*) AS reports,
		    sum(rp.message_count) AS messages
		FROM (SELECT rp.org_name, rp.message_count, rp.payload_sha256,
		    rp.revision, max(rp.revision) OVER (PARTITION BY
		    rp.org_name, rp.report_id, rp.begin_time, rp.end_time)
		    AS latest
		    FROM dmarcd.reports rp
		    WHERE rp.domain = lower(p_domain) AND
			rp.begin_time >= p_since AND
			rp.begin_time < p_until) rp
		WHERE rp.payload_sha256 IS NOT NULL AND
		    rp.revision = rp.latest
		GROUP BY rp.org_name)
	SELECT jsonb_build_object(
	    'domain', lower(p_domain), 'since', p_since, 'until', p_until,
	    'messages', t.messages, 'days', t.days,
	    'dmarc_pass', t.dpass,
	    'dmarc_pass_share', round(t.dpass::numeric /
		nullif(t.messages, 0), 4),
	    'receiver_pass', t.rpass,
	    'disagreements', jsonb_build_object(
		'messages', t.ours_only + t.theirs_only,
		'dmarcd_pass_receiver_fail', t.ours_only,
		'dmarcd_fail_receiver_pass', t.theirs_only,
		'not_recomputed', t.guessed),
	    'dkim', jsonb_build_object('aligned', t.dk_al, 'pass', t.dk_pass),
	    'spf', jsonb_build_object('aligned', t.sp_al, 'pass', t.sp_pass),
	    'sources', t.ips, 'senders', t.senders,
	    'classes', (SELECT jsonb_object_agg(k.class, jsonb_build_object(
		'messages', coalesce(x.m, 0), 'senders', coalesce(x.s, 0)))
		FROM unnest(ARRAY['aligned', 'forwarded', 'unaligned',
		    'unauthorised']) AS k(class)
		LEFT JOIN (SELECT c.class, sum(c.messages) AS m,
		    count(*) AS s FROM c GROUP BY c.class) x ON
		    x.class = k.class),
	    'disposition', (SELECT coalesce(jsonb_object_agg(d.disp, d.m),
		'{}') FROM (SELECT coalesce(nullif(disposition, ''),
		'unknown') AS disp, sum(messages) AS m FROM r GROUP BY 1) d),
	    'reporters', (SELECT coalesce(jsonb_agg(jsonb_build_object(
		'org_name', rep.org_name, 'reports', rep.reports,
		'messages', rep.messages) ORDER BY rep.messages DESC,
		rep.org_name), '[]') FROM rep),
	    'reports', (SELECT coalesce(sum(reports), 0) FROM rep),
	    'policy', dmarcd.policy_of(p_domain))
	FROM t);
END $$;

-- sources(domain, since, until): each sender, most mail first.
CREATE FUNCTION dmarcd.sources(p_domain text, p_since timestamptz,
    p_until timestamptz) RETURNS jsonb LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
	RETURN (SELECT jsonb_build_object('domain', lower(p_domain),
	    'since', p_since, 'until', p_until,
	    'senders', coalesce(jsonb_agg(jsonb_strip_nulls(
		jsonb_build_object('sender', s.sender, 'platform', s.platform,
		'class', s.class, 'messages', s.messages,
		'dmarc_pass', s.dmarc_pass, 'receiver_pass', s.receiver_pass,
		'failing', s.failing,
		'classes', jsonb_build_object('aligned', s.aligned,
		    'forwarded', s.forwarded, 'unaligned', s.unaligned,
		    'unauthorised', s.unauthorised),
		'dkim_aligned', s.dkim_aligned, 'spf_aligned', s.spf_aligned,
		'first_day', s.first_day, 'last_day', s.last_day,
		'days', s.days, 'ips', s.ips, 'top_ips', s.top_ips,
		'header_from', s.header_froms, 'dkim_domains', s.dkim_domains,
		'spf_domains', s.spf_domains, 'fix', s.fix))
		ORDER BY s.messages DESC, s.sender), '[]'))
	FROM dmarcd.sender_stats(p_domain, dmarcd.day_of(p_since),
	    dmarcd.day_after(p_until)) s);
END $$;

-- readiness(domain, days, until): whether the domain can move on from
-- its policy, judged on the days complete [until's day - days, until's
-- day). Legitimate mail is that of senders classed aligned or unaligned
-- (forwarded mail is the receivers' to judge, unauthorised mail is what
-- enforcement is for). A blocker is a legitimate sender some of whose
-- mail fails DMARC: at least one message a day, or 0.1% of the
-- legitimate volume. Ready means: data on at least 7 of the days, no
-- blocker, and 98% of legitimate mail aligned.
--
-- The path: p=none -> p=quarantine; pct=25; t=y -> p=quarantine ->
-- p=reject; pct=25; t=y -> p=reject. t=y is DMARCbis test mode (its
-- receivers apply one step less); pct is what RFC 7489 receivers
-- follow; each ignores the other's tag, so a step carries both.
CREATE FUNCTION dmarcd.readiness(p_domain text, p_days integer,
    p_until timestamptz) RETURNS jsonb LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
DECLARE
	dom text := lower(p_domain);
	ndays integer := coalesce(p_days, 30);
	hi date := dmarcd.day_of(p_until);
	lo date;
	pol jsonb := dmarcd.policy_of(p_domain);
	p text;
	pct integer;
	testing boolean;
	step integer;
	legit bigint;
	legit_pass bigint;
	fwd bigint;
	fwd_fail bigint;
	unauth bigint;
	data_days integer;
	basis_days integer;
	share numeric;
	blockers jsonb;
	minor jsonb;
	impact jsonb;
	impact_day numeric;
	trend jsonb;
	sub jsonb;
	status text;
	nxt text;
	advice text;
	sub_advice text[] := '{}';
	steps text[] := ARRAY['p=none', 'p=quarantine; pct=25; t=y',
	    'p=quarantine', 'p=reject; pct=25; t=y', 'p=reject'];
BEGIN
	IF ndays < 1 OR ndays > 366 THEN
		RAISE EXCEPTION 'days must be between 1 and 366, not %', ndays
		    USING ERRCODE = '22023';
	END IF;
	lo := hi - ndays;
	p := coalesce(pol->>'p', 'none');
	pct := coalesce((pol->>'pct')::integer, 100);
	testing := coalesce(pol->>'testing', 'n') = 'y';
	step := CASE p WHEN 'reject' THEN
		    CASE WHEN pct < 100 OR testing THEN 3 ELSE 4 END
		WHEN 'quarantine' THEN
		    CASE WHEN pct < 100 OR testing THEN 1 ELSE 2 END
		ELSE 0 END;

	-- One statement: the rows once (r); per sender what sender_stats()
	-- has (e, the fix only for the senders that can block); per day,
	-- sender and whether From is a subdomain (x); the rest from these.
	WITH r AS MATERIALIZED (
		SELECT * FROM dmarcd.source_rows(dom, lo, hi)),
	s AS (
		SELECT r.sender, max(r.platform) AS platform,
		    (sum(r.messages))::bigint AS messages,
		    (sum(r.messages) FILTER (WHERE r.auth & 3 <> 0))::bigint
			AS dpass,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'aligned'))::bigint AS c_al,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'forwarded'))::bigint AS c_fw,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'unaligned'))::bigint AS c_un,
		    (sum(r.messages) FILTER (WHERE
			r.class = 'unauthorised'))::bigint AS c_ua,
		    (sum(r.messages) FILTER (WHERE r.auth & 1 <> 0))::bigint
			AS dk_al,
		    (sum(r.messages) FILTER (WHERE r.auth & 2 <> 0))::bigint
			AS sp_al,
		    (sum(r.messages) FILTER (WHERE r.auth & 4 <> 0 AND
			r.auth & 1 = 0))::bigint AS dk_un,
		    (sum(r.messages) FILTER (WHERE r.auth & 8 <> 0 AND
			r.auth & 2 = 0))::bigint AS sp_un
		FROM r GROUP BY r.sender),
	e AS MATERIALIZED (
		SELECT c.sender, c.platform, c.class, c.messages,
		    c.messages - c.failing AS dmarc_pass, c.failing,
		    c.class IN ('aligned', 'unaligned') AS legitimate,
		    CASE WHEN c.class IN ('aligned', 'unaligned') AND
			c.failing > 0 THEN dmarcd.fix_for(dom, c.class,
			coalesce(c.platform, c.sender), coalesce(c.dk_al, 0),
			coalesce(c.sp_al, 0), coalesce(c.dk_un, 0),
			coalesce(c.sp_un, 0), c.failing, c.messages) END AS fix
		FROM (SELECT s.*, s.messages - coalesce(s.dpass, 0) AS failing,
		    dmarcd.sender_class(s.c_al, s.c_fw, s.c_un, s.c_ua) AS class
		    FROM s) c),
	x AS MATERIALIZED (
		SELECT x.day, x.sub, x.messages, x.pass, e.sender, e.class,
		    e.legitimate
		FROM (SELECT r.day, r.sender, r.header_from <> dom AS sub,
		    sum(r.messages) AS messages,
		    sum(r.messages) FILTER (WHERE r.auth & 3 <> 0) AS pass
		    FROM r GROUP BY 1, 2, 3) x
		JOIN e ON e.sender = x.sender),
	-- The basis of the impact: the last 7 days that have reports (a
	-- receiver's reports come a day or two late; days without any
	-- would count as days without failures).
	bd AS (
		SELECT coalesce(min(q.day), hi) AS lo
		FROM (SELECT DISTINCT x.day FROM x ORDER BY x.day DESC
		    LIMIT 7) q),
	dd AS (
		SELECT (count(DISTINCT x.day))::integer AS n_data,
		    (count(DISTINCT x.day) FILTER (WHERE
			x.day >= bd.lo))::integer AS n_basis
		FROM bd LEFT JOIN x ON true GROUP BY bd.lo),
	tot AS (
		SELECT (coalesce(sum(e.messages) FILTER (WHERE e.legitimate),
			0))::bigint AS n_legit,
		    (coalesce(sum(e.dmarc_pass) FILTER (WHERE e.legitimate),
			0))::bigint AS n_legit_pass,
		    (coalesce(sum(e.messages) FILTER (WHERE
			e.class = 'forwarded'), 0))::bigint AS n_fwd,
		    (coalesce(sum(e.failing) FILTER (WHERE
			e.class = 'forwarded'), 0))::bigint AS n_fwd_fail,
		    (coalesce(sum(e.messages) FILTER (WHERE
			e.class = 'unauthorised'), 0))::bigint AS n_unauth
		FROM e),
	-- What enforcement would block a day: legitimate mail failing DMARC
	-- over the last 7 days of the window that have reports.
	imp AS (
		SELECT e.sender, e.platform, e.fix, f.fail
		FROM (SELECT x.sender, sum(x.messages - coalesce(x.pass, 0))
		    AS fail FROM x, bd WHERE x.legitimate AND x.day >= bd.lo
		    GROUP BY x.sender) f
		JOIN e ON e.sender = f.sender
		WHERE f.fail > 0),
	-- Blockers, and failing senders too small to block.
	b AS (
		SELECT e.failing AS fail,
		    e.failing::numeric / greatest(dd.n_data, 1) >= 1 OR
			e.failing::numeric >= 0.001 * tot.n_legit AS big,
		    jsonb_strip_nulls(jsonb_build_object('sender', e.sender,
			'platform', e.platform, 'class', e.class,
			'messages', e.messages, 'failing', e.failing,
			'failing_per_day', round(e.failing::numeric /
			    greatest(dd.n_data, 1), 1),
			'fix', e.fix)) AS j, e.sender
		FROM e, dd, tot
		WHERE e.legitimate AND e.failing > 0)
	SELECT tot.n_legit, tot.n_legit_pass, tot.n_fwd, tot.n_fwd_fail,
	    tot.n_unauth, dd.n_data, dd.n_basis,
	    -- Per day: legitimate mail, how much aligned, unauthorised mail.
	    (SELECT coalesce(jsonb_agg(jsonb_build_object('day', d.day,
		'legitimate', d.legit, 'aligned', d.pass,
		'share', round(d.pass::numeric / nullif(d.legit, 0), 4),
		'unauthorised', d.unauth) ORDER BY d.day), '[]')
		FROM (SELECT x.day,
		    coalesce(sum(x.messages) FILTER (WHERE x.legitimate), 0)
			AS legit,
		    coalesce(sum(x.pass) FILTER (WHERE x.legitimate), 0)
			AS pass,
		    coalesce(sum(x.messages) FILTER (WHERE
			x.class = 'unauthorised'), 0) AS unauth
		    FROM x GROUP BY 1) d),
	    (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
		'sender', imp.sender, 'platform', imp.platform,
		'messages_per_day', round(imp.fail::numeric /
		    greatest(dd.n_basis, 1), 1),
		'fix', imp.fix)) ORDER BY imp.fail DESC, imp.sender), '[]')
		FROM imp),
	    (SELECT coalesce(sum(imp.fail), 0)::numeric /
		greatest(dd.n_basis, 1) FROM imp),
	    (SELECT coalesce(jsonb_agg(b.j ORDER BY b.fail DESC, b.sender)
		FILTER (WHERE b.big), '[]') FROM b),
	    (SELECT coalesce(jsonb_agg(b.j ORDER BY b.fail DESC, b.sender)
		FILTER (WHERE NOT b.big), '[]') FROM b),
	    -- Subdomains: mail whose From is a subdomain of the domain.
	    (SELECT jsonb_build_object('messages',
		coalesce(sum(x.messages), 0),
		'failing', coalesce(sum(x.messages - coalesce(x.pass, 0))
		    FILTER (WHERE x.legitimate), 0))
		FROM x WHERE x.sub)
	INTO legit, legit_pass, fwd, fwd_fail, unauth, data_days, basis_days,
	    trend, impact, impact_day, blockers, minor, sub
	FROM tot, dd;
	share := round(legit_pass::numeric / nullif(legit, 0), 4);

	IF legit + fwd + unauth = 0 THEN
		status := 'no_data';
		advice := format('No reports for %s over the %s days before %s. '
		    'Publish rua= in _dmarc.%s and wait for reports.', dom,
		    ndays, hi, dom);
	ELSIF data_days < 7 AND NOT (step > 0 AND
	    jsonb_array_length(blockers) > 0) THEN
		status := 'collecting';
		advice := format('Only %s day(s) of reports: keep %s and collect '
		    'at least 7 days before changing the policy.', data_days,
		    steps[step + 1]);
	ELSIF jsonb_array_length(blockers) > 0 OR share < 0.98 THEN
		status := CASE WHEN step > 0 THEN 'at_risk' ELSE 'not_ready' END;
		advice := format('%s of legitimate mail is aligned; %s '
		    'sender(s) must be fixed first. Stay at %s.',
		    coalesce(to_char(share * 100, 'FM990.0') || '%', 'none'),
		    jsonb_array_length(blockers), steps[step + 1]);
		IF step > 0 THEN
			advice := advice || format(' Under the current policy '
			    'about %s legitimate message(s) a day are already '
			    'quarantined or rejected.', round(impact_day));
		END IF;
	ELSIF step = 4 THEN
		status := 'enforced';
		advice := format('p=reject is in force and %s of legitimate mail '
		    'is aligned.', to_char(share * 100, 'FM990.0') || '%');
	ELSE
		status := 'ready';
		nxt := steps[step + 2];
		advice := format('%s of legitimate mail is aligned over %s days '
		    'and no legitimate sender fails: move from %s to %s.',
		    to_char(share * 100, 'FM990.0') || '%', data_days,
		    steps[step + 1], nxt);
	END IF;
	-- No legitimate mail at all (a parked domain): no share to quote.
	IF legit = 0 AND status IN ('enforced', 'ready') THEN
		advice := format('No legitimate mail over %s days, only '
		    'forwarded or unauthorised: %s.', data_days,
		    CASE WHEN nxt IS NULL THEN 'p=reject is in force'
		    ELSE format('move from %s to %s', steps[step + 1], nxt) END);
	END IF;

	IF (sub->>'failing')::bigint > 0 THEN
		sub_advice := array_append(sub_advice, format('Legitimate mail from '
		    'subdomains fails DMARC (%s messages): fix it before sp= '
		    'is stricter than none.', sub->>'failing'));
	ELSIF pol->>'sp' IS NULL THEN
		sub_advice := array_append(sub_advice, 'sp= is not set: '
		    'subdomains follow p=.');
	END IF;
	IF pol->>'np' IS NULL AND step >= 2 THEN
		sub_advice := array_append(sub_advice, 'Add np=reject: names '
		    'that do not exist never send mail (DMARCbis).');
	END IF;

	RETURN jsonb_strip_nulls(jsonb_build_object(
	    'domain', dom, 'days', ndays, 'since', lo, 'until', hi,
	    'data_days', data_days, 'policy', pol,
	    'current', steps[step + 1],
	    'verdict', jsonb_build_object('status', status, 'next', nxt,
		'advice', advice, 'path', to_jsonb(steps)),
	    'legitimate', jsonb_build_object('messages', legit,
		'aligned', legit_pass, 'share', share),
	    'forwarded', jsonb_build_object('messages', fwd,
		'failing', fwd_fail),
	    'unauthorised', jsonb_build_object('messages', unauth),
	    'impact', jsonb_build_object('basis_days', basis_days,
		'messages_per_day', round(impact_day, 1),
		'at_quarantine', round(impact_day, 1),
		'at_reject', round(impact_day, 1),
		'senders', impact),
	    'blockers', blockers, 'minor', minor,
	    'subdomains', sub || jsonb_build_object('sp', pol->>'sp',
		'np', pol->>'np', 'advice', to_jsonb(sub_advice)),
	    'trend', trend));
END $$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA dmarcd TO dmarcd_reader;
GRANT SELECT ON dmarcd.source_days TO dmarcd_reader, dmarcd_ingest;
-- Ingest's own functions stay the ingest role's.
REVOKE EXECUTE ON FUNCTION dmarcd.ensure_month(timestamptz),
    dmarcd.rollup_add(text[], bigint[], timestamptz[], integer)
    FROM dmarcd_reader;
