-- Rows for the graph schema (schema.sql): four orgs, each of which can be purged.
--
--   A aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa   most rows; its tasks parent a chain of tasks
--                                            in B and C (self-reference depth 5)
--   B bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb   cross-org: a member of A works in B's project,
--                                            B's member leads A's project
--   C cccccccc-cccc-4ccc-8ccc-cccccccccccc   the end of the chains; led by A's member
--   D dddddddd-dddd-4ddd-8ddd-dddddddddddd   the root row and nothing else
--
-- Purging A deletes tasks (20,1), (30,1), (30,2) of B and C through the task tree, and
-- sets columns of B's and C's rows to NULL: task blocked_by_task_no and assignee_id,
-- project lead_member_id, audit_log project_id, bookmark member_id, external_link
-- owner_id. Text columns hold what COPY must escape: tab, newline, carriage return,
-- backslash, a literal \N, quotes, and non-ASCII.
--
-- comment.author_id is NO ACTION: authors are members whose project is in their own
-- org, and comments are in their author's org, so no purge leaves a comment behind
-- whose author it deletes.

INSERT INTO app.org (id, name) VALUES
    ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'Alpha Org'),
    ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', E'Beta\tOrg'),
    ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'Gamma «Ωrg» ☎'),
    ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', E'Delta\\Org\nEmpty');

INSERT INTO app.project (id, org_id, name) VALUES
    (10, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'Alpha'),
    (11, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'Alpha TWO'),
    (20, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', E'Beta\r\nCRLF'),
    (30, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'Gamma'),
    (31, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', E'Gamma\tTab');

INSERT INTO app.member (id, org_id, project_id, name) OVERRIDING SYSTEM VALUE VALUES
    (101, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 10, 'Zoë Ångström'),
    (102, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 10, E'tab\there'),
    (103, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 20, E'line\nbreak'),
    (201, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 20, E'back\\slash'),
    (202, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 11, '\N'),
    (301, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 30, 'quote "double" ''single'''),
    (302, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 31, 'emoji ☎️📞');
SELECT setval(pg_get_serial_sequence('app.member', 'id'), 1000);

UPDATE app.project SET lead_member_id = 101 WHERE id IN (10, 30);
UPDATE app.project SET lead_member_id = 201 WHERE id IN (11, 20);

INSERT INTO app.task (project_id, task_no, title, parent_project_id, parent_task_no,
        blocked_by_project_id, blocked_by_task_no, assignee_org_id, assignee_id) VALUES
    (10, 1, 'root task', NULL, NULL, NULL, NULL, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 101),
    (10, 2, 'child of 10/1', 10, 1, NULL, NULL, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 201),
    (11, 1, E'A\\B two', NULL, NULL, NULL, NULL, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 202),
    (20, 1, 'B task under A''s 10/2', 10, 2, NULL, NULL, NULL, NULL),
    (20, 2, 'B task blocked by A''s 10/1', NULL, NULL, 10, 1, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 102),
    (20, 3, 'under 20/2', 20, 2, NULL, NULL, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 201),
    (30, 1, 'C task under B''s 20/1', 20, 1, NULL, NULL, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 301),
    (30, 2, 'under 30/1, depth 5', 30, 1, NULL, NULL, NULL, NULL),
    (31, 1, 'blocked by 30/1', NULL, NULL, 30, 1, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 302),
    (31, 2, 'assigned to A''s 103', NULL, NULL, 31, 1, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 103);

INSERT INTO app.comment (id, org_id, project_id, task_no, author_id, body) VALUES
    (1, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 10, 1, 101, 'plain'),
    (2, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 10, 1, 201, E'B on A''s task:\ttab'),
    (3, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 30, 2, 301, E'back\\slash \\N and \\\\'),
    (4, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 20, 2, NULL, E'line\nbreak'),
    (5, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 31, 1, 302, '日本語 ☎️'),
    (6, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 20, 3, 102, 'A on B''s task');
SELECT setval(pg_get_serial_sequence('app.comment', 'id'), 1000);

INSERT INTO app."attachment ""v2"".files" (id, comment_id, "file Path", "Size ""bytes""") VALUES
    ('0a000000-0000-4000-8000-000000000001', 1, '/files/a/one.txt', 10),
    ('0a000000-0000-4000-8000-000000000002', 3, E'/files/c/with\ttab and\nnewline', NULL),
    ('0a000000-0000-4000-8000-000000000003', 5, '/files/c/ünïcödé.bin', 3000000000),
    ('0a000000-0000-4000-8000-000000000004', 6, E'C:\\files\\a.txt', 1);

INSERT INTO app.audit_log (id, at, org_id, project_id, message) OVERRIDING SYSTEM VALUE VALUES
    (1, '2025-03-01 10:00:00+00', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 10, 'created'),
    (2, '2026-05-01 10:00:00+00', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 10, 'B looked at Alpha'),
    (3, '2025-07-01 10:00:00+00', 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 30, E'multi\nline'),
    (4, '2026-01-02 00:00:00+00', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 20, 'B'),
    (5, '2025-12-31 23:59:59.999999+00', 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 20, 'C looked at Beta');
SELECT setval(pg_get_serial_sequence('app.audit_log', 'id'), 1000);

INSERT INTO app.audit_note (audit_id, audit_at, note) VALUES
    (1, '2025-03-01 10:00:00+00', 'note on A'),
    (2, '2026-05-01 10:00:00+00', E'note on B\\x'),
    (5, '2025-12-31 23:59:59.999999+00', 'note on C');

INSERT INTO app.bookmark (member_id, url) VALUES
    (101, 'https://a.example/101'),
    (201, 'https://b.example/201'),
    (103, 'https://a.example/103'),
    (NULL, 'https://nobody.example/');

INSERT INTO app.external_link (owner_id, url) VALUES
    (102, 'https://a.example/102'),
    (202, 'https://b.example/202'),
    (301, 'https://c.example/301');

-- No primary key: the two identical rows of A must both be snapshotted.
INSERT INTO app.usage (org_id, day, calls) VALUES
    ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '2026-01-01', 5),
    ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '2026-01-01', 5),
    ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '2026-01-02', 7),
    ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', '2026-01-01', 1),
    ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee', '2026-01-01', 9);

INSERT INTO app.setting (key, value) VALUES ('theme', 'dark');

INSERT INTO other.stuff (org_id, label) VALUES (NULL, 'unrelated'), (NULL, E'tab\t');
INSERT INTO other.stuff_item (stuff_id) VALUES (1), (2);

INSERT INTO public.project (id, org_id) VALUES (10, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
