-- 0009_sender_map: the sender map's rows told apart from a user's own,
-- and dmarcd.platform_of(), the platform a name belongs to.
--
-- source: 'dmarcd' for the rows of the map built into dmarcd
-- (sql/platforms.tsv, sql/sender_rules.tsv), which every `dmarcd migrate`
-- brings up to date (upserted, dmarcd's rules replaced); 'local' (the
-- default) for rows a user inserts, which dmarcd never changes nor
-- deletes. A local rule holding the same (kind, suffix) as a built-in one
-- wins: the built-in one is not inserted. When dmarcd's rules change,
-- migrate runs dmarcd.refresh_platforms() (0008) in the same transaction;
-- after editing local rules, run it yourself. See docs/senders.md.

ALTER TABLE dmarcd.platforms ADD COLUMN source text NOT NULL
    DEFAULT 'local' CHECK (source IN ('dmarcd', 'local'));
ALTER TABLE dmarcd.sender_rules ADD COLUMN source text NOT NULL
    DEFAULT 'local' CHECK (source IN ('dmarcd', 'local'));

-- platform_of(kind, name): the platform of the longest rule suffix of
-- that kind ('ptr', 'dkim', 'spf') equal to the name or to one of its
-- parent domains (dmarcd.domain_suffixes, 0008); NULL when none, and for
-- a name longer than a domain name can be. Replaces 0008's version: each
-- suffix, longest first, is one probe of the primary key (kind, suffix),
-- so the plan stays a few index lookups however many rules there are;
-- never a LIKE scan of the rules.
CREATE OR REPLACE FUNCTION dmarcd.platform_of(kind text, name text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
	SELECT r.platform
	FROM unnest(dmarcd.domain_suffixes(CASE WHEN length($2) <= 253
	    THEN $2 END)) WITH ORDINALITY AS s(suffix, n)
	JOIN dmarcd.sender_rules AS r ON r.kind = $1 AND r.suffix = s.suffix
	ORDER BY s.n
	LIMIT 1
$$;

GRANT EXECUTE ON FUNCTION dmarcd.domain_suffixes(text),
    dmarcd.platform_of(text, text) TO dmarcd_reader, dmarcd_ingest;
GRANT EXECUTE ON FUNCTION dmarcd.refresh_platforms() TO dmarcd_ingest;
