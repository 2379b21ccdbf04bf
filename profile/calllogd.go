package profile

import "time"

// CallLogd returns Wazo call-logd's profile (its alembic schema, purger.py and the
// paths of a Wazo host): purgeguard's defaults, so no configuration is needed there.
// Every default of call-logd is declared here and nowhere else.
func CallLogd() Profile {
	public := func(t string) TableName { return TableName{Schema: "public", Table: t} }
	kind := func(k, plugin string, def int) RetentionKind {
		return RetentionKind{Plugin: plugin,
			Rule:       PurgeRule{Kind: k, Table: public("call_logd_call_log"), TenantColumn: "tenant_uuid", TimeColumn: "date"},
			DaysColumn: k + "_days", DefaultColumn: "retention_" + k + "_days", DefaultDays: def,
		}
	}
	// wazo-purge-db runs call-logd's purgers under these names (its setup.py).
	cdr, rec, exp := kind("cdr", "call-logs", 365), kind("recording", "recordings", 365), kind("export", "exports", 2)
	rec.Rule.NullTable, rec.Rule.NullColumns = public("call_logd_recording"), []string{"path"}
	exp.Rule.Table, exp.Rule.TimeColumn = public("call_logd_export"), "requested_at"
	return Profile{
		Tenants: Tenants{Root: public("call_logd_tenant"), Key: "uuid", ExtraTables: []ExtraTable{}},
		Files: []FileColumn{
			{Table: public("call_logd_recording"), Column: "path", Root: "/var/lib/wazo/sounds/tenants", PerTenant: true},
			{Table: public("call_logd_export"), Column: "path", Root: "/var/lib/wazo-call-logd/exports"},
		},
		Retention: Retention{
			Table: public("call_logd_retention"), TenantColumn: "tenant_uuid",
			DefaultsTable: public("call_logd_config"), PurgeDays: 365, PurgeDefaultDays: 365,
			Margin: 24 * time.Hour, Kinds: []RetentionKind{cdr, rec, exp},
		},
		Activity: Activity{Table: public("call_logd_call_log"), TenantColumn: "tenant_uuid", TimeColumn: "date"},
	}
}
