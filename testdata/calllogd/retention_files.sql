-- The files call-logd's retention purge removes (see retention_days.sql): recordings
-- of the call logs it deletes and of those past the recording cut-off, and the zip
-- files of the exports it deletes.
SELECT rec.path
FROM call_logd_recording rec
JOIN call_logd_call_log c ON c.id = rec.call_log_id
JOIN retention_cutoff k ON k.tenant = c.tenant_uuid
WHERE rec.path IS NOT NULL AND (c.date < k.cdr OR c.date < k.recording)
UNION ALL
SELECT e.path
FROM call_logd_export e
JOIN retention_cutoff k ON k.tenant = e.tenant_uuid
WHERE e.path IS NOT NULL AND e.requested_at < k.export;
