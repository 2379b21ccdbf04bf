package profile_test

import (
	"fmt"

	"github.com/purgeguard/purgeguard/profile"
)

// call-logd's profile is purgeguard's default; another service describes its own.
func ExampleCallLogd() {
	p := profile.CallLogd()
	fmt.Println(p.Tenants.Root, p.Tenants.Key)
	for _, f := range p.Files {
		fmt.Println(f.Table, f.Column, f.Root)
	}
	for _, k := range p.Retention.Kinds {
		fmt.Println(k.Rule.Kind, k.DefaultDays)
	}
	// Output:
	// public.call_logd_tenant uuid
	// public.call_logd_recording path /var/lib/wazo/sounds/tenants
	// public.call_logd_export path /var/lib/wazo-call-logd/exports
	// cdr 365
	// recording 365
	// export 2
}
