-- call-logd's nightly retention purge (wazo_call_logd/purger.py, run by wazo-purge-db),
-- written in SQL for tests and the demo, in three files run on one session:
--   retention_days.sql   this file: pg_temp.retention_cutoff, each tenant's cut-offs
--   retention_files.sql  the paths of the files the purge removes (the caller removes
--                        them, as the real purge does before it commits)
--   retention_purge.sql  the deletes and the update
-- The purge job's days (wazo-purge-db's days_to_keep) come from the setting
-- purge.days (SET purge.days = '90'), 365 when unset; each purger's own days
-- (days_to_keep_per_plugin) from purge.call_logs_days, purge.recordings_days and
-- purge.exports_days, purge.days when unset: wazo-purge-db hands each purger
-- days_to_keep_per_plugin.get(name, days_to_keep).
--
-- Days of a tenant per kind: its call_logd_retention value when not NULL; else the
-- kind's purger's days when changed from 365 and the global value (call_logd_config)
-- was not changed from the built-in default (cdr 365, recording 365, export 2); else
-- the global value.
CREATE OR REPLACE TEMPORARY VIEW retention_cutoff AS
WITH cfg AS (
    SELECT retention_cdr_days AS cdr, retention_recording_days AS recording,
           retention_export_days AS export
    FROM call_logd_config LIMIT 1
), days AS (
    SELECT coalesce(nullif(current_setting('purge.days', true), ''), '365')::int AS days
), job AS (
    SELECT coalesce(nullif(current_setting('purge.call_logs_days', true), '')::int, days) AS cdr,
        coalesce(nullif(current_setting('purge.recordings_days', true), '')::int, days) AS recording,
        coalesce(nullif(current_setting('purge.exports_days', true), '')::int, days) AS export
    FROM days
)
SELECT t.uuid AS tenant,
    now() - make_interval(days => coalesce(r.cdr_days,
        CASE WHEN job.cdr <> 365 AND coalesce(cfg.cdr, 365) = 365 THEN job.cdr END,
        cfg.cdr, 365)) AS cdr,
    now() - make_interval(days => coalesce(r.recording_days,
        CASE WHEN job.recording <> 365 AND coalesce(cfg.recording, 365) = 365 THEN job.recording END,
        cfg.recording, 365)) AS recording,
    now() - make_interval(days => coalesce(r.export_days,
        CASE WHEN job.export <> 365 AND coalesce(cfg.export, 2) = 2 THEN job.export END,
        cfg.export, 2)) AS export
FROM call_logd_tenant t
LEFT JOIN call_logd_retention r ON r.tenant_uuid = t.uuid
CROSS JOIN job
LEFT JOIN cfg ON true;
