-- call-logd schema as its own alembic migrations build it (wazo-call-logd at
-- ac299956: the squashed Wazo 25.14 baseline, then the voicemail transcription
-- table, the retention primary key and reached_voicemail), restated for tests and
-- the demo: the same columns in the same physical order, defaults from uuid-ossp,
-- indexes and named CHECK constraints. fixture.LayoutWazo; schema_scrambled.sql
-- is the other layout. On a default install these tables share the "asterisk"
-- database with other services' tables: cel and queue_log below stand for those,
-- and purgeguard must never read them.

CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public;

CREATE TYPE public.call_logd_call_log_participant_role AS ENUM ('source', 'destination');

-- tenant_uuid is the 5th column; reached_voicemail arrives last through ALTER TABLE,
-- as its migration adds it. There is NO index on tenant_uuid or date: a per-tenant
-- select is a sequential scan (what makes one scan per table matter).
CREATE TABLE public.call_logd_call_log (
    id integer NOT NULL,
    date timestamp with time zone NOT NULL,
    date_answer timestamp with time zone,
    date_end timestamp with time zone,
    tenant_uuid uuid NOT NULL,
    source_name character varying(255),
    source_exten character varying(255),
    source_internal_exten text,
    source_internal_context text,
    source_line_identity character varying(255),
    requested_name text,
    requested_exten character varying(255),
    requested_context character varying(255),
    requested_internal_exten text,
    requested_internal_context text,
    destination_name character varying(255),
    destination_exten character varying(255),
    destination_internal_exten text,
    destination_internal_context text,
    destination_line_identity character varying(255),
    direction character varying(255),
    user_field character varying(255),
    source_internal_name text,
    conversation_id character varying(255),
    blocked boolean,
    CONSTRAINT call_logd_call_log_direction_check CHECK (direction IN ('inbound', 'internal', 'outbound'))
);

CREATE TABLE public.call_logd_call_log_destination (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    destination_details_key character varying(32) NOT NULL,
    destination_details_value character varying(255) NOT NULL,
    call_log_id integer,
    CONSTRAINT call_logd_call_log_destination_details_key_check CHECK (destination_details_key IN ('type', 'user_uuid', 'user_name', 'meeting_uuid', 'meeting_name', 'conference_id', 'group_label', 'group_id'))
);

CREATE SEQUENCE public.call_logd_call_log_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER SEQUENCE public.call_logd_call_log_id_seq OWNED BY public.call_logd_call_log.id;

CREATE TABLE public.call_logd_call_log_participant (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    call_log_id integer,
    user_uuid uuid NOT NULL,
    line_id integer,
    role public.call_logd_call_log_participant_role NOT NULL,
    tags character varying(128)[] DEFAULT '{}'::character varying[] NOT NULL,
    answered boolean DEFAULT false NOT NULL,
    requested boolean DEFAULT false NOT NULL
);

-- Global, not tenant-scoped: never snapshotted, never restored.
CREATE TABLE public.call_logd_config (
    id integer NOT NULL,
    retention_cdr_days integer,
    retention_cdr_days_from_file boolean NOT NULL,
    retention_recording_days integer,
    retention_recording_days_from_file boolean NOT NULL,
    retention_export_days integer,
    retention_export_days_from_file boolean NOT NULL
);

CREATE SEQUENCE public.call_logd_config_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER SEQUENCE public.call_logd_config_id_seq OWNED BY public.call_logd_config.id;

-- Export zip files: <exports root>/<uuid>.zip.
CREATE TABLE public.call_logd_export (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    tenant_uuid uuid NOT NULL,
    user_uuid uuid NOT NULL,
    requested_at timestamp with time zone NOT NULL,
    status character varying(32) NOT NULL,
    path text,
    CONSTRAINT call_logd_export_status_check CHECK (status IN ('pending', 'processing', 'finished', 'deleted', 'error'))
);

-- Files: <recordings root>/<tenant_uuid>/monitor/<uuid>.wav; path holds the absolute
-- path, NULL once the media was deleted (the row stays). Older rows' uuid does not
-- match the file name: files are located by path only.
CREATE TABLE public.call_logd_recording (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    path text,
    call_log_id integer NOT NULL
);

CREATE TABLE public.call_logd_retention (
    tenant_uuid uuid NOT NULL,
    cdr_days integer,
    recording_days integer,
    export_days integer
);

CREATE TABLE public.call_logd_tenant (
    uuid uuid NOT NULL
);

ALTER TABLE ONLY public.call_logd_call_log ALTER COLUMN id SET DEFAULT nextval('public.call_logd_call_log_id_seq'::regclass);
ALTER TABLE ONLY public.call_logd_config ALTER COLUMN id SET DEFAULT nextval('public.call_logd_config_id_seq'::regclass);

ALTER TABLE ONLY public.call_logd_call_log_destination ADD CONSTRAINT call_logd_call_log_destination_pkey PRIMARY KEY (uuid);
ALTER TABLE ONLY public.call_logd_call_log_participant ADD CONSTRAINT call_logd_call_log_participant_pkey PRIMARY KEY (uuid);
ALTER TABLE ONLY public.call_logd_call_log ADD CONSTRAINT call_logd_call_log_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.call_logd_config ADD CONSTRAINT call_logd_config_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.call_logd_export ADD CONSTRAINT call_logd_export_pkey PRIMARY KEY (uuid);
ALTER TABLE ONLY public.call_logd_recording ADD CONSTRAINT call_logd_recording_pkey PRIMARY KEY (uuid);
ALTER TABLE ONLY public.call_logd_tenant ADD CONSTRAINT call_logd_tenant_pkey PRIMARY KEY (uuid);

CREATE INDEX call_logd_call_log__idx__conversation_id ON public.call_logd_call_log USING btree (conversation_id);
CREATE INDEX call_logd_call_log_destination__idx__call_log_id ON public.call_logd_call_log_destination USING btree (call_log_id);
CREATE INDEX call_logd_call_log_destination__idx__uuid ON public.call_logd_call_log_destination USING btree (uuid);
CREATE INDEX call_logd_call_log_participant__idx__call_log_id ON public.call_logd_call_log_participant USING btree (call_log_id);
CREATE INDEX call_logd_call_log_participant__idx__user_uuid ON public.call_logd_call_log_participant USING btree (user_uuid);
CREATE INDEX call_logd_export__idx__user_uuid ON public.call_logd_export USING btree (user_uuid);
CREATE INDEX call_logd_recording__idx__call_log_id ON public.call_logd_recording USING btree (call_log_id);

ALTER TABLE ONLY public.call_logd_call_log_destination
    ADD CONSTRAINT call_logd_call_log_destination_call_log_id_fkey FOREIGN KEY (call_log_id) REFERENCES public.call_logd_call_log(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.call_logd_call_log_participant
    ADD CONSTRAINT call_logd_call_log_participant_call_log_id_fkey FOREIGN KEY (call_log_id) REFERENCES public.call_logd_call_log(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.call_logd_call_log
    ADD CONSTRAINT call_logd_call_log_tenant_uuid_fkey FOREIGN KEY (tenant_uuid) REFERENCES public.call_logd_tenant(uuid) ON DELETE CASCADE;
ALTER TABLE ONLY public.call_logd_export
    ADD CONSTRAINT call_logd_export_tenant_uuid_fkey FOREIGN KEY (tenant_uuid) REFERENCES public.call_logd_tenant(uuid) ON DELETE CASCADE;
ALTER TABLE ONLY public.call_logd_recording
    ADD CONSTRAINT call_logd_recording_call_log_id_fkey FOREIGN KEY (call_log_id) REFERENCES public.call_logd_call_log(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.call_logd_retention
    ADD CONSTRAINT call_logd_retention_tenant_uuid_fkey FOREIGN KEY (tenant_uuid) REFERENCES public.call_logd_tenant(uuid) ON DELETE CASCADE;

-- 48f5f29349c2: voicemail transcriptions.
CREATE TABLE public.call_logd_voicemail_transcription (
    uuid uuid DEFAULT public.uuid_generate_v4() NOT NULL,
    message_id character varying(255) NOT NULL,
    tenant_uuid uuid NOT NULL,
    voicemail_id integer,
    transcription_text text NOT NULL,
    provider_id text,
    language character varying(8),
    duration double precision,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT call_logd_voicemail_transcription_pkey PRIMARY KEY (uuid),
    CONSTRAINT call_logd_voicemail_transcription_message_id_key UNIQUE (message_id),
    CONSTRAINT call_logd_voicemail_transcription_tenant_uuid_fkey FOREIGN KEY (tenant_uuid) REFERENCES public.call_logd_tenant(uuid) ON DELETE CASCADE
);
CREATE INDEX call_logd_voicemail_transcription__idx__tenant_uuid ON public.call_logd_voicemail_transcription (tenant_uuid);
CREATE INDEX call_logd_voicemail_transcription__idx__voicemail_id ON public.call_logd_voicemail_transcription (voicemail_id);

-- 332b72b38735: the retention table's primary key.
ALTER TABLE public.call_logd_retention ADD CONSTRAINT call_logd_retention_pkey PRIMARY KEY (tenant_uuid);

-- 0776735d0419: reached_voicemail, and the voicemail destination keys.
ALTER TABLE public.call_logd_call_log ADD COLUMN reached_voicemail boolean;
ALTER TABLE public.call_logd_call_log_destination DROP CONSTRAINT call_logd_call_log_destination_details_key_check;
ALTER TABLE public.call_logd_call_log_destination ADD CONSTRAINT call_logd_call_log_destination_details_key_check
    CHECK (destination_details_key IN ('type', 'user_uuid', 'user_name', 'meeting_uuid', 'meeting_name', 'conference_id',
        'group_label', 'group_id', 'voicemail_id', 'voicemail_name'));

-- Written by call-logd at start-up from its configuration file.
INSERT INTO public.call_logd_config (retention_cdr_days, retention_cdr_days_from_file,
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
