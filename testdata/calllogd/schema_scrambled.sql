-- call-logd schema, the "scrambled" layout (fixture.LayoutScrambled): the tables of
-- schema.sql with a different physical column order (tenant_uuid 23rd of 26 in
-- call_logd_call_log, not 5th), gen_random_uuid() defaults and fewer indexes and
-- named constraints. make bench loads it, so that its figures stay comparable with
-- the ones it printed before; tests load schema.sql, the real layout. On a default install these tables share the "asterisk"
-- database with other services' tables: cel and queue_log below stand for those, and
-- purgeguard must never read them.

CREATE TYPE call_logd_call_log_participant_role AS ENUM ('source', 'destination');

CREATE TABLE call_logd_tenant (
    uuid uuid PRIMARY KEY
);

-- Physical column order differs between installs: tenant_uuid is not first here, and
-- reached_voicemail arrives last through ALTER TABLE, as a migration would add it.
CREATE TABLE call_logd_call_log (
    id serial PRIMARY KEY,
    date timestamptz NOT NULL,
    date_answer timestamptz,
    date_end timestamptz,
    source_name varchar(255),
    source_exten varchar(255),
    source_line_identity varchar(255),
    source_internal_exten text,
    source_internal_context text,
    source_internal_name text,
    requested_name text,
    requested_exten varchar(255),
    requested_context varchar(255),
    requested_internal_exten text,
    requested_internal_context text,
    destination_name varchar(255),
    destination_exten varchar(255),
    destination_line_identity varchar(255),
    destination_internal_exten text,
    destination_internal_context text,
    direction varchar(255) CHECK (direction IN ('inbound', 'internal', 'outbound')),
    user_field varchar(255),
    tenant_uuid uuid NOT NULL REFERENCES call_logd_tenant (uuid) ON DELETE CASCADE,
    conversation_id varchar(255),
    blocked boolean
);
ALTER TABLE call_logd_call_log ADD COLUMN reached_voicemail boolean;
-- Only conversation_id is indexed: there is NO index on tenant_uuid or date, so a
-- per-tenant select is a sequential scan (what makes one scan per table matter).
CREATE INDEX call_logd_call_log__idx__conversation_id ON call_logd_call_log (conversation_id);

CREATE TABLE call_logd_call_log_participant (
    uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    call_log_id integer REFERENCES call_logd_call_log (id) ON DELETE CASCADE,
    user_uuid uuid NOT NULL,
    line_id integer,
    role call_logd_call_log_participant_role NOT NULL,
    tags varchar(128)[] NOT NULL DEFAULT '{}',
    answered boolean NOT NULL DEFAULT false,
    requested boolean NOT NULL DEFAULT false
);
CREATE INDEX call_logd_call_log_participant__idx__call_log_id ON call_logd_call_log_participant (call_log_id);
CREATE INDEX call_logd_call_log_participant__idx__user_uuid ON call_logd_call_log_participant (user_uuid);

CREATE TABLE call_logd_call_log_destination (
    uuid uuid PRIMARY KEY,
    destination_details_key varchar(32) NOT NULL CHECK (destination_details_key IN (
        'type', 'user_uuid', 'user_name', 'meeting_uuid', 'meeting_name', 'conference_id',
        'group_label', 'group_id', 'voicemail_id', 'voicemail_name')),
    destination_details_value varchar(255) NOT NULL,
    call_log_id integer REFERENCES call_logd_call_log (id) ON DELETE CASCADE
);
CREATE INDEX call_logd_call_log_destination__idx__call_log_id ON call_logd_call_log_destination (call_log_id);

-- Files: <recordings root>/<tenant_uuid>/monitor/<uuid>.wav; path holds the absolute
-- path, NULL once the media was deleted (the row stays). Older rows' uuid does not
-- match the file name: files are located by path only.
CREATE TABLE call_logd_recording (
    uuid uuid PRIMARY KEY,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    path text,
    call_log_id integer NOT NULL REFERENCES call_logd_call_log (id) ON DELETE CASCADE
);
CREATE INDEX call_logd_recording__idx__call_log_id ON call_logd_recording (call_log_id);

-- Export zip files: <exports root>/<uuid>.zip.
CREATE TABLE call_logd_export (
    uuid uuid PRIMARY KEY,
    tenant_uuid uuid NOT NULL REFERENCES call_logd_tenant (uuid) ON DELETE CASCADE,
    user_uuid uuid NOT NULL,
    requested_at timestamptz NOT NULL,
    status varchar(32) NOT NULL CHECK (status IN ('pending', 'processing', 'finished', 'deleted', 'error')),
    path text
);

CREATE TABLE call_logd_retention (
    tenant_uuid uuid PRIMARY KEY REFERENCES call_logd_tenant (uuid) ON DELETE CASCADE,
    cdr_days integer,
    recording_days integer,
    export_days integer
);

CREATE TABLE call_logd_voicemail_transcription (
    uuid uuid PRIMARY KEY,
    message_id varchar(255) NOT NULL UNIQUE,
    tenant_uuid uuid NOT NULL REFERENCES call_logd_tenant (uuid) ON DELETE CASCADE,
    voicemail_id integer,
    transcription_text text NOT NULL,
    provider_id text,
    language varchar(8),
    duration double precision,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_logd_voicemail_transcription__idx__tenant_uuid ON call_logd_voicemail_transcription (tenant_uuid);

-- Global, not tenant-scoped: never snapshotted, never restored.
CREATE TABLE call_logd_config (
    id serial PRIMARY KEY,
    retention_cdr_days integer,
    retention_cdr_days_from_file boolean NOT NULL,
    retention_recording_days integer,
    retention_recording_days_from_file boolean NOT NULL,
    retention_export_days integer,
    retention_export_days_from_file boolean NOT NULL
);
INSERT INTO call_logd_config (retention_cdr_days, retention_cdr_days_from_file,
    retention_recording_days, retention_recording_days_from_file,
    retention_export_days, retention_export_days_from_file)
VALUES (365, true, 365, true, 2, true);

-- Other services' tables in the shared asterisk database: not linked to the tenant
-- root, never read.
CREATE TABLE cel (
    id serial PRIMARY KEY,
    eventtype varchar(30) NOT NULL,
    eventtime timestamp NOT NULL,
    linkedid varchar(150) NOT NULL
);
CREATE TABLE queue_log (
    id serial PRIMARY KEY,
    time timestamptz,
    queuename varchar(50),
    event varchar(20)
);
INSERT INTO cel (eventtype, eventtime, linkedid) VALUES ('CHAN_START', '2026-01-01', '1700000000.1');
