package sip

import (
	"testing"

	"github.com/mimigw/mimigw/gateway"
)

func TestCapabilitiesFromContact(t *testing.T) {
	for _, tc := range []struct {
		name     string
		contacts []string
		want     gateway.Capabilities
	}{
		{"UP client", []string{`<sip:+15551230001@10.0.0.5:5060;transport=tcp>;+sip.instance="<urn:uuid:1>";` +
			`+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session,urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg,urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg,urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.filetransfer";` +
			`+g.3gpp.iari-ref="urn%3Aurn-7%3A3gpp-application.ims.iari.rcs.fthttp";+g.gsma.rcs.msgrevoke`},
			gateway.Capabilities{Chat: true, FileTransfer: true, Revoke: true, LargeMessage: true, ChatSession: true}},
		{"large message mode", []string{`<sip:a@b>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg"`},
			gateway.Capabilities{Chat: true, LargeMessage: true}},
		{"pager mode only", []string{`<sip:a@b>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg"`},
			gateway.Capabilities{Chat: true}},
		{"plain colons, upper case", []string{`<sip:a@b>;+G.3GPP.ICSI-REF="URN:URN-7:3GPP-SERVICE.IMS.ICSI.OMA.CPM.SESSION"`},
			gateway.Capabilities{Chat: true, ChatSession: true}},
		{"RCS-e chat", []string{`<sip:a@b>;+g.3gpp.iari-ref="urn%3Aurn-7%3A3gpp-application.ims.iari.rcse.im"`},
			gateway.Capabilities{Chat: true}},
		{"bare URI: params are header params", []string{`sip:a@b;+g.gsma.rcs.msgrevoke;+g.3gpp.iari-ref="urn%3Aurn-7%3A3gpp-application.ims.iari.rcs.fthttp"`},
			gateway.Capabilities{FileTransfer: true, Revoke: true}},
		{"URI parameters are not tags", []string{`<sip:a@b;+g.gsma.rcs.msgrevoke>`}, gateway.Capabilities{}},
		{"two contacts in one header", []string{`<sip:a@b>;x=1, <sip:c@d>;+g.gsma.rcs.msgrevoke`}, gateway.Capabilities{Revoke: true}},
		{"quoted comma and semicolon", []string{`"Bob; Jr, III" <sip:a@b>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg"`},
			gateway.Capabilities{Chat: true}},
		{"voice only", []string{`<sip:a@b>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`}, gateway.Capabilities{}},
		{"nothing", nil, gateway.Capabilities{}},
	} {
		if got := capabilities(tc.contacts); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// Our own Contact reads back as what we advertise.
func TestOurTagsRoundTrip(t *testing.T) {
	got := capabilities([]string{"<sip:+15551230002@127.0.0.1:5060>" + ourTags})
	if want := (gateway.Capabilities{Chat: true, FileTransfer: true}); got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}

func FuzzContactParams(f *testing.F) {
	for _, s := range []string{
		`<sip:+15551230001@10.0.0.5:5060;transport=tcp>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg";+g.gsma.rcs.msgrevoke`,
		`sip:a@b;x;y="z,w"`, `"q\"uote" <sip:x>;a=b, <sip:y>;c`, `<<<;;;"`, `;=;=,`, `"unterminated <sip:x>;a`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range contactParams(s) {
			if len(p.name) > len(s) || len(p.value) > len(s) {
				t.Fatalf("param %+v longer than its input", p)
			}
			p.values()
		}
		capabilities([]string{s})
	})
}

func BenchmarkCapabilities(b *testing.B) {
	contact := []string{`<sip:+15551230001@10.0.0.5:5060;transport=tcp>;+sip.instance="<urn:uuid:1>";` +
		`+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session,urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg";` +
		`+g.3gpp.iari-ref="urn%3Aurn-7%3A3gpp-application.ims.iari.rcs.fthttp";+g.gsma.rcs.msgrevoke`}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		capabilities(contact)
	}
}
