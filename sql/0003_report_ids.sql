-- 0003_report_ids: dmarcd ingest takes report ids ahead (a small
-- report's rows are written before its row), so its role may draw on the
-- reports' identity sequence.
DO $$
BEGIN
	EXECUTE format('GRANT USAGE ON SEQUENCE %s TO dmarcd_ingest',
	    pg_get_serial_sequence('dmarcd.reports', 'id'));
END $$;
