-- contrib/sql/flag-reset-trigger.sql - the source side of strategy "flag": when a row that
-- onesyncd has marked done changes afterwards, set its flag back to "pending", so that the
-- next run sends it again. Install it in the SOURCE database (it needs PostgreSQL 12+):
--
--   psql "dbname=shop" -f contrib/sql/flag-reset-trigger.sql
--   CREATE TRIGGER orders_resync BEFORE UPDATE ON orders FOR EACH ROW
--     EXECUTE FUNCTION onesync_reset_flag('synced', 'false', 'erp_id', 'updated_at');
--
-- Arguments: the flag column; the value that means pending (as text, converted to the
-- column's type); then the columns whose changes alone must not reset the flag: those the
-- marking writes (erp_id) and bookkeeping columns (updated_at).
-- An UPDATE that changes the flag itself (onesyncd's marking, or an operator) is left alone.

CREATE OR REPLACE FUNCTION onesync_reset_flag() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	flag	text := TG_ARGV[0];
	pending	text := TG_ARGV[1];
	ignored	text[] := COALESCE(TG_ARGV[2:], '{}');
	n	jsonb := to_jsonb(NEW);
	o	jsonb := to_jsonb(OLD);
BEGIN
	IF TG_NARGS < 2 THEN
		RAISE EXCEPTION 'onesync_reset_flag(flag_column, pending_value [, ignored_column ...])';
	END IF;
	IF NOT n ? flag THEN
		RAISE EXCEPTION 'onesync_reset_flag: table %.% has no column %', TG_TABLE_SCHEMA, TG_TABLE_NAME, flag;
	END IF;
	IF n -> flag IS DISTINCT FROM o -> flag THEN
		RETURN NEW;	-- the marking itself, or a deliberate change of the flag
	END IF;
	IF (n - flag - ignored) = (o - flag - ignored) THEN
		RETURN NEW;	-- nothing that matters changed
	END IF;
	RETURN jsonb_populate_record(NEW, jsonb_build_object(flag, pending));
END $$;
