-- A write goes to the server in one round trip (store/postgres/writes.rs): BEGIN, its statements
-- and COMMIT together. A statement whose precondition fails (the row is gone, or at another
-- version than the writer read) raises with this, which aborts the transaction: the statements
-- after it fail and the COMMIT rolls back. WG404: not found; WG409: changed since it was read.
CREATE FUNCTION webhook_guard_refuse(code text, what text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = what || ': ' || CASE code
        WHEN 'WG409' THEN 'changed since it was read' ELSE 'not found' END;
END
$$;
