-- 0009_sender_map: the sender map's rows told apart from a user's own,
-- and dmarcd.platform_of(), the platform a name belongs to.
--
-- source: 'dmarcd' for the rows of the map built into dmarcd
-- (sql/platforms.tsv, sql/sender_rules.tsv), which every `dmarcd migrate`
-- brings up to date (upserted, dmarcd's rules replaced); 'local' (the
-- default) for rows a user inserts, which dmarcd never changes nor
-- deletes. A local rule holding the same (kind, suffix) as a built-in one
-- wins: the built-in one is not inserted. See docs/senders.md.

ALTER TABLE dmarcd.platforms ADD COLUMN source text NOT NULL
    DEFAULT 'local' CHECK (source IN ('dmarcd', 'local'));
ALTER TABLE dmarcd.sender_rules ADD COLUMN source text NOT NULL
    DEFAULT 'local' CHECK (source IN ('dmarcd', 'local'));

-- name_suffixes('a8-31.smtp-out.amazonses.com.') =
-- {a8-31.smtp-out.amazonses.com, smtp-out.amazonses.com, amazonses.com,
-- com}: the name (lower case, without the root's dot) and each parent.
-- Empty for '' and for a name longer than a domain name can be.
CREATE FUNCTION dmarcd.name_suffixes(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE WHEN n = '' OR length(n) > 253 THEN '{}'::text[]
	ELSE ARRAY(SELECT array_to_string(l[i:], '.')
	    FROM generate_subscripts(l, 1) AS i ORDER BY i) END
	FROM (SELECT lower(rtrim(btrim($1), '.')) AS n) AS x,
	    LATERAL (SELECT string_to_array(x.n, '.') AS l) AS y
$$;

-- platform_of(kind, name): the platform of the longest rule suffix of
-- that kind ('ptr', 'dkim', 'spf') equal to the name or to one of its
-- parent domains; NULL when none. Each suffix, longest first, is looked
-- up in the primary key (kind, suffix): a few index probes, never a LIKE
-- scan of the rules.
CREATE FUNCTION dmarcd.platform_of(kind text, name text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT r.platform
	FROM unnest(dmarcd.name_suffixes($2)) WITH ORDINALITY AS s(suffix, n)
	JOIN dmarcd.sender_rules AS r ON r.kind = $1 AND r.suffix = s.suffix
	ORDER BY s.n
	LIMIT 1
$$;

GRANT EXECUTE ON FUNCTION dmarcd.name_suffixes(text),
    dmarcd.platform_of(text, text) TO dmarcd_reader, dmarcd_ingest;
