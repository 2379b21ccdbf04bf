package fence_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// A partitioned root: the row trigger is cloned onto each partition, so a DELETE
// addressed to a partition is fenced too, and Uninstall must drop the parent's
// trigger only (a clone cannot be dropped on its own).
const partitionedRoot = `
CREATE TABLE public.tenant (id bigint PRIMARY KEY) PARTITION BY HASH (id);
CREATE TABLE public.tenant_p0 PARTITION OF public.tenant FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.tenant_p1 PARTITION OF public.tenant FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE public.item (id serial PRIMARY KEY, tenant_id bigint NOT NULL REFERENCES public.tenant ON DELETE CASCADE);
INSERT INTO public.tenant SELECT generate_series(1, 10);
INSERT INTO public.item (tenant_id) SELECT generate_series(1, 10);`

func TestPartitionedRoot(t *testing.T) {
	e := newEnv(t, partitionedRoot)
	g := e.load(t, catalog.Options{Root: catalog.Name{Schema: "public", Table: "tenant"}, Key: "id"})
	catalogBefore := e.catalogState(t)
	e.install(t, g)

	e.refused(t, "DELETE FROM public.tenant", "delete of tenant")
	e.refused(t, "DELETE FROM public.tenant_p0", "delete of tenant")
	e.refused(t, "DELETE FROM public.tenant_p1", "delete of tenant")
	e.refused(t, "TRUNCATE public.tenant_p1 CASCADE", "truncate of public.tenant_p1")

	e.arm(t, uuid.New(), time.Now().Add(time.Hour), "3")
	if n := e.deleted(t, "DELETE FROM public.tenant WHERE id = 3"); n != 1 {
		t.Fatalf("approved delete removed %d rows, want 1", n)
	}
	if got := e.counts(t)["item"]; got != 9 {
		t.Errorf("items after the approved delete: %d, want 9", got)
	}

	e.install(t, g)
	e.uninstall(t, g)
	if after := e.catalogState(t); !slices.Equal(catalogBefore, after) {
		t.Errorf("catalog after Uninstall differs:\nbefore %q\nafter  %q", catalogBefore, after)
	}
}
