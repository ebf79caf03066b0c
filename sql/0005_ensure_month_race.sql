-- 0005_ensure_month_race: two collectors making the same month's
-- partitions at the same moment. The second CREATE TABLE waits for the
-- first one's commit and then fails on the table's row type with
-- 42710 duplicate_object ("type records_2026_01 already exists"), which
-- 0001's ensure_month() did not catch (only duplicate_table and
-- unique_violation): the second collector's batch failed. Seen with
-- three concurrent ingests of reports of a new month.
CREATE OR REPLACE FUNCTION dmarcd.ensure_month(t timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, dmarcd AS $$
DECLARE
	lo timestamptz := date_trunc('month', t AT TIME ZONE 'UTC')
	    AT TIME ZONE 'UTC';
	hi timestamptz := lo + interval '1 month';
	suffix text := to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
	parent text;
BEGIN
	FOREACH parent IN ARRAY ARRAY['records', 'dkim_results',
	    'spf_results'] LOOP
		IF to_regclass('dmarcd.' || parent || '_' || suffix)
		    IS NOT NULL THEN
			CONTINUE;
		END IF;
		BEGIN
			EXECUTE format('CREATE TABLE dmarcd.%I (LIKE dmarcd.%I '
			    'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
			    parent || '_' || suffix, parent);
			EXECUTE format('ALTER TABLE dmarcd.%I ADD CHECK '
			    '(report_begin >= %L AND report_begin < %L)',
			    parent || '_' || suffix, lo, hi);
			EXECUTE format('ALTER TABLE dmarcd.%I ATTACH PARTITION '
			    'dmarcd.%I FOR VALUES FROM (%L) TO (%L)', parent,
			    parent || '_' || suffix, lo, hi);
		EXCEPTION WHEN duplicate_table OR duplicate_object OR
		    unique_violation THEN
			NULL;	-- another collector made it meanwhile
		END;
	END LOOP;
END $$;
