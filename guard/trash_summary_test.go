package guard_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/guard"
)

// SummarizeTrash sums rows per tenant (and table), counts each deleting
// transaction once however many tables it kept rows of, spans the oldest and newest
// rows, keeps rows not attributed yet apart, and orders by oldest row.
func TestSummarizeTrash(t *testing.T) {
	a, b := uuid.MustParse("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"), uuid.MustParse("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
	at := func(m int) time.Time { return time.Date(2026, 11, 29, 10, m, 0, 0, time.UTC) }
	groups := []guard.TrashGroup{
		{Tenant: &b, Table: "t.log", Xid: 7, First: at(1), Last: at(2), Rows: 3},
		{Tenant: &a, Table: "t.log", Xid: 8, First: at(3), Last: at(3), Rows: 1},
		{Tenant: &a, Table: "t.part", Xid: 8, First: at(3), Last: at(4), Rows: 2},
		{Tenant: nil, Table: "t.part", Xid: 9, First: at(5), Last: at(5), Rows: 4},
		{Tenant: &a, Table: "t.log", Xid: 10, First: at(6), Last: at(9), Rows: 5},
	}
	for _, tc := range []struct {
		name     string
		perTable bool
		want     []guard.TrashSummary
	}{
		{"per tenant", false, []guard.TrashSummary{
			{Tenant: &b, Transactions: 1, First: at(1), Last: at(2), Rows: 3},
			{Tenant: &a, Transactions: 2, First: at(3), Last: at(9), Rows: 8},
			{Tenant: nil, Transactions: 1, First: at(5), Last: at(5), Rows: 4},
		}},
		{"per tenant and table", true, []guard.TrashSummary{
			{Tenant: &b, Table: "t.log", Transactions: 1, First: at(1), Last: at(2), Rows: 3},
			{Tenant: &a, Table: "t.log", Transactions: 2, First: at(3), Last: at(9), Rows: 6},
			{Tenant: &a, Table: "t.part", Transactions: 1, First: at(3), Last: at(4), Rows: 2},
			{Tenant: nil, Table: "t.part", Transactions: 1, First: at(5), Last: at(5), Rows: 4},
		}},
		{"empty", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := groups
			if tc.want == nil {
				in = nil
			}
			if got := guard.SummarizeTrash(in, tc.perTable); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
