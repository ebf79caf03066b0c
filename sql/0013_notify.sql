-- 0013_notify: tell whoever keeps answers (the API, api/answers.c) that
-- they may have changed. dmarcd ingest sends NOTIFY dmarcd_data, 'DOMAIN'
-- in the transaction that stores a domain's reports (store/ingest.c);
-- what every domain's answers depend on sends '*' here, once per
-- statement: the names of sources and domains (dmarcd resolve), the
-- sender map (dmarcd migrate), and records realigned by the tree walk.
-- NOTIFY is sent at commit, and not at all on rollback.
CREATE FUNCTION dmarcd.notify_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('dmarcd_data', '*');
	RETURN NULL;
END $$;

CREATE TRIGGER ip_names_notify AFTER INSERT OR UPDATE OR DELETE
    ON dmarcd.ip_names FOR EACH STATEMENT
    EXECUTE FUNCTION dmarcd.notify_all();
CREATE TRIGGER domain_orgs_notify AFTER INSERT OR UPDATE OR DELETE
    ON dmarcd.domain_orgs FOR EACH STATEMENT
    EXECUTE FUNCTION dmarcd.notify_all();
CREATE TRIGGER treewalk_orgs_notify AFTER INSERT OR UPDATE OR DELETE
    ON dmarcd.treewalk_orgs FOR EACH STATEMENT
    EXECUTE FUNCTION dmarcd.notify_all();
CREATE TRIGGER platforms_notify AFTER INSERT OR UPDATE OR DELETE
    ON dmarcd.platforms FOR EACH STATEMENT
    EXECUTE FUNCTION dmarcd.notify_all();
CREATE TRIGGER sender_rules_notify AFTER INSERT OR UPDATE OR DELETE
    ON dmarcd.sender_rules FOR EACH STATEMENT
    EXECUTE FUNCTION dmarcd.notify_all();
-- dmarcd ingest only inserts records; an update is a realignment.
CREATE TRIGGER records_notify AFTER UPDATE ON dmarcd.records
    FOR EACH STATEMENT EXECUTE FUNCTION dmarcd.notify_all();
