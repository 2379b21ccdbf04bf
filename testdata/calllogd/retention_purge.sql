-- call-logd's retention purge (see retention_days.sql), after its files are gone.
-- Call logs cascade to participants, destinations and recordings.
DELETE FROM call_logd_call_log c USING retention_cutoff k
WHERE k.tenant = c.tenant_uuid AND c.date < k.cdr;
DELETE FROM call_logd_export e USING retention_cutoff k
WHERE k.tenant = e.tenant_uuid AND e.requested_at < k.export;
-- Recordings past their cut-off lose their file; the row stays.
UPDATE call_logd_recording rec SET path = NULL
FROM call_logd_call_log c, retention_cutoff k
WHERE c.id = rec.call_log_id AND k.tenant = c.tenant_uuid AND c.date < k.recording;
