package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/admin"
)

const (
	repoRoot  = "../.."
	deployDir = "../../deploy"
)

// TestDeployFiles checks what deploy/ gives an operator: every YAML and
// JSON file parses; the gateway configurations in it load; the NATS cluster
// configuration is one cluster whose mimigw user may do what the gateway
// does (three servers started from the files carry a message end to end);
// the Kubernetes manifests and Helm values agree with the configuration
// they carry; the Grafana dashboard and the Prometheus rules name only
// metrics the gateway exports; and `systemd-analyze verify` accepts the
// units.
//
// Which metrics the gateway exports: a vector metric with no observations
// is absent from /metrics, so /metrics alone cannot say. The test reads
// every prometheus.*Opts literal in the module's Go source (Namespace,
// Subsystem and Name, constants resolved), adds the library collectors
// serve.go and gateway/admin register (Go runtime, process, promhttp), and
// checks that set against the /metrics of a gateway that ran: every family
// there must be in it, so a metric the scan missed fails the test instead
// of passing unseen.
func TestDeployFiles(t *testing.T) {
	t.Run("parse", testDeployParse)
	t.Run("gateway-configs", testDeployGatewayConfigs)
	t.Run("nats-cluster-files", testDeployNATSFiles)
	t.Run("kubernetes", testDeployKubernetes)
	t.Run("alert-rules", testDeployAlertRules)
	t.Run("promql-names", testPromQLMetrics)
	exported := exportedMetrics(t)
	t.Run("metric-names", func(t *testing.T) { testDeployMetricNames(t, exported) })
	t.Run("nats-cluster-run", func(t *testing.T) { testDeployClusterRun(t, exported) })
	t.Run("systemd", testDeploySystemd)
}

// deployFiles lists the files under deploy/ with one of the extensions,
// outside node_modules (third-party packages of deploy/interop).
func deployFiles(t *testing.T, exts ...string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if !d.IsDir() && slices.Contains(exts, filepath.Ext(p)) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, file string) []*yaml.Node {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", file, len(docs)+1, err)
		}
		docs = append(docs, &n)
	}
}

func testDeployParse(t *testing.T) {
	yamls := deployFiles(t, ".yaml", ".yml")
	for _, f := range yamls {
		for i, n := range yamlDocs(t, f) {
			var v any
			if err := n.Decode(&v); err != nil {
				t.Errorf("%s: document %d: %v", f, i+1, err)
			}
		}
	}
	jsons := deployFiles(t, ".json")
	for _, f := range jsons {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The files this test is about must be among them.
	for _, want := range []string{"nats/cluster/mimigw.yaml", "kubernetes/mimigw.yaml", "kubernetes/nats-values.yaml",
		"prometheus/mimigw-alerts.yaml", "grafana/mimigw-dashboard.json"} {
		if !slices.Contains(append(yamls, jsons...), filepath.Join(deployDir, want)) {
			t.Errorf("deploy/%s missing", want)
		}
	}
}

// fileKeyEnv returns MIMIGW_... overrides pointing every *_file key of a
// gateway configuration at a stand-in file (the real ones live on a
// production host), found by walking the YAML.
func fileKeyEnv(t *testing.T, doc []byte) []string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var env []string
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i].Value, n.Content[i+1]
				p := append(slices.Clone(path), strings.ToUpper(key))
				if strings.HasSuffix(key, "_file") && val.Kind == yaml.ScalarNode && val.Value != "" {
					name := strings.Join(p, "_")
					stand := filepath.Join(dir, name)
					if err := os.WriteFile(stand, []byte("x"), 0o600); err != nil {
						t.Fatal(err)
					}
					env = append(env, "MIMIGW_"+name+"="+stand)
					continue
				}
				walk(val, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(slices.Clone(path), strconv.Itoa(i)))
			}
		}
	}
	walk(&root, nil)
	return env
}

// loadDeployConfig loads a gateway configuration from deploy/ the way
// `mimigw serve --config` does, with stand-ins for the files it names.
func loadDeployConfig(t *testing.T, name string, doc []byte) *Config {
	t.Helper()
	f := filepath.Join(t.TempDir(), "mimigw.yaml")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(f, false, fileKeyEnv(t, doc))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// k8sObject is what the checks read of a Kubernetes manifest.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

func k8sObjects(t *testing.T) map[string]*k8sObject {
	t.Helper()
	f := filepath.Join(deployDir, "kubernetes", "mimigw.yaml")
	objs := map[string]*k8sObject{}
	for i, n := range yamlDocs(t, f) {
		var o k8sObject
		if err := n.Decode(&o); err != nil {
			t.Fatalf("%s: document %d: %v", f, i+1, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", f, i+1)
			continue
		}
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: %s/%s names a namespace; the set is applied with -n", f, o.Kind, o.Metadata.Name)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if objs[key] != nil {
			t.Errorf("%s: %s twice", f, key)
		}
		objs[key] = &o
	}
	return objs
}

// k8sGatewayConfig is the gateway configuration the ConfigMap carries.
func k8sGatewayConfig(t *testing.T, objs map[string]*k8sObject) (string, *Config) {
	t.Helper()
	var cms []*k8sObject
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Data["mimigw.yaml"] != "" {
			cms = append(cms, o)
		}
	}
	if len(cms) != 1 {
		t.Fatalf("kubernetes/mimigw.yaml: want one ConfigMap with a mimigw.yaml key, found %d", len(cms))
	}
	return cms[0].Metadata.Name, loadDeployConfig(t, "kubernetes/mimigw.yaml ConfigMap "+cms[0].Metadata.Name, []byte(cms[0].Data["mimigw.yaml"]))
}

func readDeploy(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testDeployGatewayConfigs(t *testing.T) {
	c := loadDeployConfig(t, "nats/cluster/mimigw.yaml", readDeploy(t, "nats/cluster/mimigw.yaml"))
	if c.Bus.Replicas != 3 {
		t.Errorf("nats/cluster/mimigw.yaml: bus.replicas %d, want 3", c.Bus.Replicas)
	}
	if c.MLS != nil && c.MLS.State.Replicas != c.Bus.Replicas {
		t.Errorf("nats/cluster/mimigw.yaml: mls.state.replicas %d, bus.replicas %d", c.MLS.State.Replicas, c.Bus.Replicas)
	}
	if c.Bus.User == "" || c.Bus.PasswordFile == "" || c.Bus.Password != "" {
		t.Errorf("nats/cluster/mimigw.yaml: want bus.user with bus.password_file (credentials from files)")
	}
	if n := len(strings.Split(c.Bus.URL, ",")); n != 3 {
		t.Errorf("nats/cluster/mimigw.yaml: bus.url lists %d servers, want the 3 nodes", n)
	}
	if c.SIP == nil || c.SMPP == nil || c.Simulator != nil {
		t.Errorf("nats/cluster/mimigw.yaml: want SIP and SMPP and no simulator")
	}

	_, k := k8sGatewayConfig(t, k8sObjects(t))
	if k.Bus.Replicas != 3 || (k.MLS != nil && k.MLS.State.Replicas != 3) {
		t.Errorf("kubernetes ConfigMap: bus.replicas %d, want 3 (and mls.state.replicas alike)", k.Bus.Replicas)
	}
	if k.SIP == nil || k.SMPP == nil || k.Provider == nil || k.Simulator != nil {
		t.Errorf("kubernetes ConfigMap: want SIP, SMPP and the provider, and no simulator")
	}
}

// natsNodes parses the three node configurations the way nats-server
// does, with the passwords they read from the environment set.
func natsNodes(t *testing.T) []*server.Options {
	t.Helper()
	t.Setenv("NATS_MIMIGW_PASSWORD", "mimigwtestpassword")
	t.Setenv("NATS_ADMIN_PASSWORD", "admintestpassword")
	var nodes []*server.Options
	for i := 1; i <= 3; i++ {
		f := filepath.Join(deployDir, "nats", "cluster", fmt.Sprintf("nats-%d.conf", i))
		o, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		nodes = append(nodes, o)
	}
	return nodes
}

// natsUser finds a user of a node configuration.
func natsUser(o *server.Options, name string) *server.User {
	for _, u := range o.Users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func testDeployNATSFiles(t *testing.T) {
	nodes := natsNodes(t)
	gw := loadDeployConfig(t, "nats/cluster/mimigw.yaml", readDeploy(t, "nats/cluster/mimigw.yaml"))
	names := map[string]bool{}
	routes := func(o *server.Options) []string {
		var r []string
		for _, u := range o.Routes {
			r = append(r, u.String())
		}
		sort.Strings(r)
		return r
	}
	for i, o := range nodes {
		name := fmt.Sprintf("nats-%d.conf", i+1)
		if o.ServerName == "" || names[o.ServerName] {
			t.Errorf("%s: server_name %q empty or not unique", name, o.ServerName)
		}
		names[o.ServerName] = true
		if !o.JetStream || o.StoreDir == "" || o.JetStreamMaxStore <= 0 || o.JetStreamMaxMemory <= 0 {
			t.Errorf("%s: want JetStream with store_dir, max_file_store and max_memory_store", name)
		}
		if o.Cluster.Name != nodes[0].Cluster.Name || o.Cluster.Name == "" {
			t.Errorf("%s: cluster name %q, nats-1 has %q", name, o.Cluster.Name, nodes[0].Cluster.Name)
		}
		if len(o.Routes) != 3 || !slices.Equal(routes(o), routes(nodes[0])) {
			t.Errorf("%s: routes %v, want the same three as nats-1.conf", name, routes(o))
		}
		for _, r := range o.Routes {
			if r.User == nil {
				t.Errorf("%s: route %s carries no credentials", name, r)
				continue
			}
			if p, _ := r.User.Password(); r.User.Username() != o.Cluster.Username || p != o.Cluster.Password {
				t.Errorf("%s: route %s does not carry the cluster's authorization", name, r.Redacted())
			}
		}
		if o.SystemAccount == "" {
			t.Errorf("%s: no system_account", name)
		}
		u := natsUser(o, gw.Bus.User)
		if u == nil || u.Account == nil || u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
			t.Fatalf("%s: no user %q with an account and publish and subscribe permissions", name, gw.Bus.User)
		}
		if u.Password != "mimigwtestpassword" {
			t.Errorf("%s: the %s password should come from $NATS_MIMIGW_PASSWORD", name, u.Username)
		}
		pub, sub := u.Permissions.Publish.Allow, u.Permissions.Subscribe.Allow
		for _, s := range []string{"mimi.>", "mimigw.>", "$JS.API.>", "$KV.>"} {
			if !slices.Contains(pub, s) {
				t.Errorf("%s: user %s may not publish %s", name, u.Username, s)
			}
		}
		if !slices.Contains(sub, "_INBOX.>") {
			t.Errorf("%s: user %s may not subscribe to _INBOX.>", name, u.Username)
		}
		// Each node's client address is in the gateway's bus.url.
		host := o.ServerName + "."
		if !strings.Contains(gw.Bus.URL, "nats://"+host) || !strings.Contains(gw.Bus.URL, ":"+strconv.Itoa(o.Port)) {
			t.Errorf("nats/cluster/mimigw.yaml: bus.url %s does not name %s...:%d", gw.Bus.URL, host, o.Port)
		}
	}

	// The Helm values give the same user the same permissions.
	var values struct {
		Config struct {
			Merge struct {
				Accounts map[string]struct {
					Users []struct {
						User        string `yaml:"user"`
						Permissions struct {
							Publish   struct{ Allow []string } `yaml:"publish"`
							Subscribe struct{ Allow []string } `yaml:"subscribe"`
						} `yaml:"permissions"`
					} `yaml:"users"`
				} `yaml:"accounts"`
			} `yaml:"merge"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(readDeploy(t, "kubernetes/nats-values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	u := natsUser(nodes[0], gw.Bus.User)
	found := false
	for acc, a := range values.Config.Merge.Accounts {
		for _, vu := range a.Users {
			if vu.User != u.Username {
				continue
			}
			found = true
			if acc != u.Account.Name || !slices.Equal(vu.Permissions.Publish.Allow, u.Permissions.Publish.Allow) ||
				!slices.Equal(vu.Permissions.Subscribe.Allow, u.Permissions.Subscribe.Allow) {
				t.Errorf("kubernetes/nats-values.yaml: user %s in %s with %+v differs from nats-1.conf (%s, publish %v, subscribe %v)",
					vu.User, acc, vu.Permissions, u.Account.Name, u.Permissions.Publish.Allow, u.Permissions.Subscribe.Allow)
			}
		}
	}
	if !found {
		t.Errorf("kubernetes/nats-values.yaml: no user %s", u.Username)
	}
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sPodSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
		LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

func listenPort(t *testing.T, key, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", key, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: %v", key, addr, err)
	}
	return n
}

func testDeployKubernetes(t *testing.T) {
	objs := k8sObjects(t)
	cmName, cfg := k8sGatewayConfig(t, objs)
	var deps []*k8sObject
	for _, o := range objs {
		if o.Kind == "Deployment" {
			deps = append(deps, o)
		}
	}
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, found %d", len(deps))
	}
	var spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	if err := deps[0].Spec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	pod := spec.Template.Spec
	if spec.Replicas < 2 {
		t.Errorf("Deployment: %d replicas, want 2 or more", spec.Replicas)
	}
	if !pod.SecurityContext.RunAsNonRoot || len(pod.Containers) != 1 {
		t.Fatalf("Deployment: want runAsNonRoot and one container")
	}
	c := pod.Containers[0]
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container: want readOnlyRootFilesystem and no privilege escalation")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("container: want cpu and memory requests and a memory limit")
	}
	ports := map[string]int{}
	protos := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
		protos[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	httpPort := listenPort(t, "http.listen", cfg.HTTP.Listen)
	if ports["http"] != httpPort {
		t.Errorf("container port http %d, the configuration listens on %d", ports["http"], httpPort)
	}
	for key, addr := range map[string]string{"sip.listen.udp": cfg.SIP.Listen.UDP, "sip.listen.tcp": cfg.SIP.Listen.TCP, "provider.listen": cfg.Provider.Listen} {
		proto := "TCP"
		if key == "sip.listen.udp" {
			proto = "UDP"
		}
		if p := fmt.Sprintf("%d/%s", listenPort(t, key, addr), proto); !protos[p] {
			t.Errorf("no container port %s for %s", p, key)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "http" {
		t.Errorf("readiness probe: want GET /readyz on port http")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != "http" {
		t.Errorf("liveness probe: want GET /healthz on port http")
	}

	// The configuration is mounted where --config says, and every file it
	// names is on a mounted volume: the Secret's keys under its mount.
	volumes := map[string]string{} // volume -> ConfigMap or Secret
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			volumes[v.Name] = "ConfigMap/" + v.ConfigMap.Name
		case v.Secret != nil:
			volumes[v.Name] = "Secret/" + v.Secret.SecretName
		}
	}
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container args %v: no --config FILE", c.Args)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == c.Args[i+1] && volumes[m.Name] == "ConfigMap/"+cmName && m.SubPath == "mimigw.yaml" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("--config %s is not the ConfigMap %s's mimigw.yaml", c.Args[i+1], cmName)
	}
	var fileKeys []string
	var collect func(n *yaml.Node)
	collect = func(n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			for _, ch := range n.Content {
				collect(ch)
			}
			return
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			if strings.HasSuffix(n.Content[j].Value, "_file") && n.Content[j+1].Kind == yaml.ScalarNode {
				fileKeys = append(fileKeys, n.Content[j+1].Value)
			}
			collect(n.Content[j+1])
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(objs["ConfigMap/"+cmName].Data["mimigw.yaml"]), &root); err != nil {
		t.Fatal(err)
	}
	collect(&root)
	if len(fileKeys) == 0 {
		t.Fatal("the ConfigMap's configuration names no files")
	}
	for _, f := range fileKeys {
		ok := false
		for _, m := range c.VolumeMounts {
			if filepath.Dir(f) != m.MountPath {
				continue
			}
			ok = true
			if src := volumes[m.Name]; objs[src] != nil && objs[src].Kind == "Secret" {
				if _, has := objs[src].StringData[filepath.Base(f)]; !has {
					t.Errorf("%s: no key %s for %s", src, filepath.Base(f), f)
				}
			}
		}
		if !ok {
			t.Errorf("the configuration names %s, which no volume mount holds", f)
		}
	}

	// Services select the pods and target their ports; a PDB guards them.
	podLabels := spec.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(spec.Selector.MatchLabels) {
		t.Errorf("Deployment selector %v does not match its pods %v", spec.Selector.MatchLabels, podLabels)
	}
	services, pdbs := 0, 0
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			services++
			var s struct {
				Selector map[string]string `yaml:"selector"`
				Ports    []struct {
					TargetPort string `yaml:"targetPort"`
				} `yaml:"ports"`
			}
			if err := o.Spec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			if !matches(s.Selector) {
				t.Errorf("Service %s selects %v, not the gateway pods", o.Metadata.Name, s.Selector)
			}
			for _, p := range s.Ports {
				if _, ok := ports[p.TargetPort]; !ok {
					t.Errorf("Service %s targets port %q, which the container does not name", o.Metadata.Name, p.TargetPort)
				}
			}
		case "PodDisruptionBudget":
			pdbs++
			var s struct {
				Selector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			}
			if err := o.Spec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			if !matches(s.Selector.MatchLabels) {
				t.Errorf("PodDisruptionBudget %s does not select the gateway pods", o.Metadata.Name)
			}
		}
	}
	if services == 0 || pdbs != 1 {
		t.Errorf("want Services and one PodDisruptionBudget, found %d and %d", services, pdbs)
	}

	// The NATS chart reads its passwords from this Secret, and the gateway
	// connects to the chart's client Service.
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Enabled bool   `yaml:"enabled"`
						Size    string `yaml:"size"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
		Container struct {
			Env map[string]yaml.Node `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal(readDeploy(t, "kubernetes/nats-values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	v := values.Config
	if !v.Cluster.Enabled || v.Cluster.Replicas != 3 || !v.JetStream.Enabled || !v.JetStream.FileStore.Enabled ||
		!v.JetStream.FileStore.PVC.Enabled || v.JetStream.FileStore.PVC.Size == "" {
		t.Errorf("nats-values.yaml: want a cluster of 3 with JetStream on file storage and a PVC size: %+v", v)
	}
	for name, n := range values.Container.Env {
		var ref struct {
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		}
		if n.Kind != yaml.MappingNode {
			continue
		}
		if err := n.Decode(&ref); err != nil {
			t.Fatal(err)
		}
		r := ref.ValueFrom.SecretKeyRef
		if s := objs["Secret/"+r.Name]; s == nil || s.StringData[r.Key] == "" {
			t.Errorf("nats-values.yaml: %s reads Secret %s key %s, which mimigw.yaml does not define", name, r.Name, r.Key)
		}
	}
	if cfg.Bus.URL != "nats://nats:4222" {
		t.Errorf("ConfigMap bus.url %s: want the chart's Service, nats://nats:4222", cfg.Bus.URL)
	}
}

// rulesFile is a Prometheus rule file.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertRules(t *testing.T) rulesFile {
	t.Helper()
	var rf rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(readDeploy(t, "prometheus/mimigw-alerts.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("prometheus/mimigw-alerts.yaml: %v", err)
	}
	return rf
}

func testDeployAlertRules(t *testing.T) {
	rf := alertRules(t)
	seen := map[string]bool{}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if seen[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: no expr", r.Alert)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if s := r.Annotations["summary"]; s == "" || strings.Contains(s, "\n") {
				t.Errorf("alert %s: want a one-line summary", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts")
	}
}

// metricsKind records how a metric family appears in PromQL.
type metricKind int

const (
	plainMetric metricKind = iota
	histogramMetric
	summaryMetric
)

// seriesNames are the names a family's series carry.
func seriesNames(name string, k metricKind) []string {
	switch k {
	case histogramMetric:
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case summaryMetric:
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// sourceMetrics reads every prometheus.CounterOpts, GaugeOpts,
// HistogramOpts and SummaryOpts literal in the module's non-test Go files
// (deploy/ aside: its load tools are not the gateway) and returns the
// metric families they define. Namespace, Subsystem and Name may be string
// literals or constants of the same package; anything else fails.
func sourceMetrics(t *testing.T) map[string]metricKind {
	t.Helper()
	kinds := map[string]metricKind{"CounterOpts": plainMetric, "GaugeOpts": plainMetric, "HistogramOpts": histogramMetric, "SummaryOpts": summaryMetric}
	byDir := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != repoRoot && (strings.HasPrefix(name, ".") || name == "deploy" || name == "node_modules" || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metricKind{}
	for dir, files := range byDir {
		// String constants of the package, in any scope; a name bound to
		// two values is ambiguous and cannot be used.
		consts := map[string]string{}
		ambiguous := map[string]bool{}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				gd, ok := n.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					return true
				}
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							continue
						}
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							continue
						}
						if old, dup := consts[name.Name]; dup && old != v {
							ambiguous[name.Name] = true
						}
						consts[name.Name] = v
					}
				}
				return true
			})
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				cl, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				sel, ok := cl.Type.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				kind, known := kinds[sel.Sel.Name]
				if !ok || pkg.Name != "prometheus" || !known {
					return true
				}
				parts := map[string]string{}
				for _, e := range cl.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, ok := kv.Key.(*ast.Ident)
					if !ok || (key.Name != "Namespace" && key.Name != "Subsystem" && key.Name != "Name") {
						continue
					}
					switch v := kv.Value.(type) {
					case *ast.BasicLit:
						s, err := strconv.Unquote(v.Value)
						if err != nil {
							t.Errorf("%s: %s: %v", fset.Position(v.Pos()), key.Name, err)
						}
						parts[key.Name] = s
					case *ast.Ident:
						s, ok := consts[v.Name]
						if !ok || ambiguous[v.Name] {
							t.Errorf("%s: %s = %s: not a string constant of package %s", fset.Position(v.Pos()), key.Name, v.Name, dir)
						}
						parts[key.Name] = s
					default:
						t.Errorf("%s: %s is neither a string nor a constant; the test cannot name the metric", fset.Position(v.Pos()), key.Name)
					}
				}
				if parts["Name"] == "" {
					t.Errorf("%s: prometheus.%s without a Name", fset.Position(cl.Pos()), sel.Sel.Name)
					return true
				}
				out[prometheus.BuildFQName(parts["Namespace"], parts["Subsystem"], parts["Name"])] = kind
				return true
			})
		}
	}
	return out
}

// exportedMetrics is every metric family the gateway can export: those in
// its source, those of the Go and process collectors runGateway registers,
// and the /metrics handler's own (promhttp, through gateway/admin).
func exportedMetrics(t *testing.T) map[string]metricKind {
	t.Helper()
	fams := sourceMetrics(t)
	if len(fams) < 20 {
		t.Fatalf("found only %d metric families in the source; the scan is broken", len(fams))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admin.Handler(admin.Options{Registry: reg}) // registers the /metrics handler's own counters
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		k := plainMetric
		switch mf.GetType().String() {
		case "HISTOGRAM":
			k = histogramMetric
		case "SUMMARY":
			k = summaryMetric
		}
		fams[mf.GetName()] = k
	}
	return fams
}

var (
	promqlAggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	promqlKeywords   = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true, "atan2": true}
	promqlLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
)

func isIdentChar(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, functions,
// aggregations, keywords, label lists, numbers and Grafana variables are
// set aside.
func promqlMetrics(expr string) ([]string, error) {
	var b []byte
	braces, brackets := 0, 0
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '"', '\'', '`':
			j := i + 1
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' {
					j++
				}
			}
			if j >= len(expr) {
				return nil, errors.New("unterminated string")
			}
			i = j
			b = append(b, ' ')
			continue
		case '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
			b = append(b, ' ')
			continue
		case '{':
			braces++
		case '}':
			braces--
		case '[':
			brackets++
		case ']':
			brackets--
		}
		if braces < 0 || brackets < 0 {
			return nil, errors.New("unbalanced braces or brackets")
		}
		if braces > 0 || brackets > 0 || c == '{' || c == '}' || c == '[' || c == ']' {
			b = append(b, ' ')
			continue
		}
		b = append(b, c)
	}
	if braces != 0 || brackets != 0 {
		return nil, errors.New("unbalanced braces or brackets")
	}
	s := string(b)
	var names []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '$': // a Grafana variable
			i++
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentChar(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			i = j
			switch {
			case promqlLabelLists[word]:
				if k < len(s) && s[k] == '(' {
					end := strings.IndexByte(s[k:], ')')
					if end < 0 {
						return nil, fmt.Errorf("%s ( without )", word)
					}
					i = k + end + 1
				}
			case promqlKeywords[word], promqlAggregations[word], k < len(s) && s[k] == '(':
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names, nil
}

// testPromQLMetrics checks the name extraction the metric checks rely on.
func testPromQLMetrics(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`sum by (le, kind) (rate(a_bucket{x="}{", y=~"$v"}[$__rate_interval]))`, []string{"a_bucket"}},
		{`histogram_quantile(0.99, sum(rate(b[5m])) by (le)) > bool 0.5`, []string{"b"}},
		{"c / on (instance) group_left (mode) d\n  and ignoring(x) e offset 1h", []string{"c", "d", "e"}},
		{`absent(f) or count_values("v", g) unless topk(3, h:rate5m)`, []string{"f", "g", "h:rate5m"}},
		{`max without (smsc) (i) == 0 # a comment naming no_metric`, []string{"i"}},
	} {
		got, err := promqlMetrics(tt.expr)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("promqlMetrics(%q) = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{`sum(a{x="y"`, `rate(a[5m)`, `a{x="y}`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q): no error", bad)
		}
	}
}

// dashboardQueries returns the PromQL of a Grafana dashboard: every expr
// of its panels, and the metric of each label_values variable.
func dashboardQueries(t *testing.T, b []byte) []string {
	t.Helper()
	var d struct {
		Panels        []any `json:"panels"`
		SchemaVersion int   `json:"schemaVersion"`
		UID           string
		Title         string
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Errorf("dashboard: want a uid, a title, panels and schemaVersion 36 or later, got %d", d.SchemaVersion)
	}
	var exprs []string
	ids := map[float64]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			if id, ok := v["id"].(float64); ok && v["gridPos"] != nil {
				if ids[id] {
					t.Errorf("dashboard: panel id %v twice", id)
				}
				ids[id] = true
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^\s*label_values\((?:(.*),)?\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if sm := labelValues.FindStringSubmatch(q); sm != nil {
			if sm[1] != "" {
				exprs = append(exprs, sm[1])
			}
			continue
		}
		exprs = append(exprs, q)
	}
	return exprs
}

func testDeployMetricNames(t *testing.T, exported map[string]metricKind) {
	names := map[string]bool{}
	for fam, k := range exported {
		for _, n := range seriesNames(fam, k) {
			names[n] = true
		}
	}
	check := func(where string, exprs []string) map[string]bool {
		used := map[string]bool{}
		for _, e := range exprs {
			ms, err := promqlMetrics(e)
			if err != nil {
				t.Errorf("%s: %q: %v", where, e, err)
				continue
			}
			if len(ms) == 0 {
				t.Errorf("%s: %q names no metric", where, e)
			}
			for _, m := range ms {
				used[m] = true
				if !names[m] {
					t.Errorf("%s: %q names %s, which the gateway does not export", where, e, m)
				}
			}
		}
		return used
	}

	dash := check("grafana/mimigw-dashboard.json", dashboardQueries(t, readDeploy(t, "grafana/mimigw-dashboard.json")))
	for _, prefix := range []string{"mimigw_gateway_", "mimigw_sip_", "mimigw_smpp_", "mimigw_bus_", "mimigw_provider_", "mimigw_mls_"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(dash)), func(m string) bool { return strings.HasPrefix(m, prefix) }) {
			t.Errorf("dashboard: no panel over %s* metrics", prefix)
		}
	}

	var exprs []string
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	alerts := check("prometheus/mimigw-alerts.yaml", exprs)
	for _, m := range []string{"mimigw_smpp_binds_up", "mimigw_sip_answers_total", "mimigw_smpp_receipts_total",
		"mimigw_provider_outbox_total", "mimigw_bus_connected", "mimigw_bus_publish_failures_total"} {
		if !alerts[m] {
			t.Errorf("alert rules: none over %s", m)
		}
	}
}

// testDeployClusterRun starts the three NATS servers of
// deploy/nats/cluster from their files (on loopback ports, with temporary
// stores; users, permissions, accounts and JetStream settings as written),
// runs the dev gateway against them with the bus section of
// deploy/nats/cluster/mimigw.yaml, and sends a text with `mimigw send` as
// the same user: it must come back delivered, with no permission errors
// on the way. The gateway's /metrics must hold only exported families.
func testDeployClusterRun(t *testing.T, exported map[string]metricKind) {
	nodes := natsNodes(t)
	gw := loadDeployConfig(t, "nats/cluster/mimigw.yaml", readDeploy(t, "nats/cluster/mimigw.yaml"))
	const password = "mimigwtestpassword" // natsNodes sets it

	// Route hosts name the nodes by server_name (nats-1.example.net).
	clusterAddr := map[string]string{}
	for _, o := range nodes {
		clusterAddr[o.ServerName] = freeAddr(t)
	}
	var servers []*server.Server
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	var urls []string
	for _, o := range nodes {
		o.Host, o.Port = "127.0.0.1", -1
		o.HTTPHost, o.HTTPPort = "", 0
		o.StoreDir = t.TempDir()
		o.NoLog, o.NoSigs = true, true
		h, p, _ := net.SplitHostPort(clusterAddr[o.ServerName])
		o.Cluster.Host = h
		o.Cluster.Port, _ = strconv.Atoi(p)
		for i, r := range o.Routes {
			node, _, _ := strings.Cut(r.Hostname(), ".")
			addr, ok := clusterAddr[node]
			if !ok {
				t.Fatalf("%s: route %s names no node", o.ServerName, r.Redacted())
			}
			u := *r
			u.Host = addr
			o.Routes[i] = &u
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("%s: %v", o.ServerName, err)
		}
		servers = append(servers, s)
		go s.Start()
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
		urls = append(urls, s.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(servers, (*server.Server).JetStreamIsLeader) {
		if time.Now().After(deadline) {
			t.Fatal("the JetStream cluster elected no leader")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pwFile := filepath.Join(t.TempDir(), "nats.password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two shards instead of the file's many keep the test light; every
	// other bus setting is the file's.
	const shards = 2
	cfg := startDev(t, func(cfg *Config) {
		cfg.Bus = gw.Bus
		cfg.Bus.URL = strings.Join(urls, ",")
		cfg.Bus.PasswordFile = pwFile
		cfg.Bus.DeliveriesShards = shards
		cfg.MLS.State.Replicas = gw.MLS.State.Replicas
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // nobody there: RCS fails, SMS it is
		// A limit, so that the text is counted on the bus as this user.
		cfg.Gateway.Limits.Sender = gateway.Rate{Messages: 100, Window: time.Minute}
	})

	sendCfg := filepath.Join(t.TempDir(), "send.yaml")
	err := os.WriteFile(sendCfg, fmt.Appendf(nil, `domain: %s
default_region: US
bus:
  url: %s
  user: %s
  password_file: %s
  replicas: %d
  deliveries_shards: %d
smpp:
  smscs: [{name: unused, address: 127.0.0.1:1, system_id: x}]
`, cfg.Domain, cfg.Bus.URL, gw.Bus.User, pwFile, gw.Bus.Replicas, shards), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run([]string{"send", "--config", sendCfg, "--to", "+15551230002", "hello from the cluster"}, &out, &errOut); err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	if f := strings.Fields(out.String()); len(f) < 2 || f[len(f)-1] != "delivered" {
		t.Fatalf("send printed %q, want the message ID and then delivered", out.String())
	}

	resp, err := http.Get("http://" + cfg.HTTP.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	live, counted := 0, ""
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			live++
			if _, ok := exported[f[2]]; !ok {
				t.Errorf("/metrics has %s, which the source scan did not find", f[2])
			}
		}
		// A permission the user lacks shows as an asynchronous error.
		if f := strings.Fields(line); len(f) == 2 && f[0] == "mimigw_bus_async_errors_total" && f[1] != "0" {
			t.Errorf("the gateway saw %s asynchronous NATS errors (permissions?)", f[1])
		}
		if strings.HasPrefix(line, `mimigw_gateway_limit_decisions_total{limit="sender",outcome="allowed"} `) {
			counted = line
		}
	}
	if !strings.HasSuffix(counted, " 1") {
		t.Errorf("the text was not counted against the sender limit on the bus: %q", counted)
	}
	if live < 20 {
		t.Errorf("/metrics has only %d families", live)
	}
	t.Logf("cluster %s: a text went out by SMS and came back delivered; /metrics has %d families, the source %d", strings.Join(urls, ","), live, len(exported))
}

// testDeploySystemd runs `systemd-analyze verify` on each unit in
// deploy/systemd, with ExecStart pointed at a binary built for the test
// (verify wants the program to exist): mimigw from this module, and
// nats-server from the version go.mod requires.
func testDeploySystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("MIMIGW_INTEROP") == "1" {
			t.Fatal("systemd-analyze is not installed (Debian package systemd)")
		}
		t.Skip("systemd-analyze is not installed (Debian package systemd); set MIMIGW_INTEROP=1 to fail instead")
	}
	units, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in deploy/systemd: %v", err)
	}
	packages := map[string]string{"mimigw": "github.com/mimigw/mimigw/cmd/mimigw", "nats-server": "github.com/nats-io/nats-server/v2"}
	dir := t.TempDir()
	built := map[string]string{}
	execPath := regexp.MustCompile(`/usr/local/bin/([a-z-]+)`)
	for _, unit := range units {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !strings.Contains(text, "\nExecStart=/usr/local/bin/") {
			t.Errorf("%s: ExecStart is not a program in /usr/local/bin", unit)
		}
		for _, m := range execPath.FindAllStringSubmatch(text, -1) {
			name := m[1]
			if built[name] != "" {
				continue
			}
			pkg, ok := packages[name]
			if !ok {
				t.Fatalf("%s: runs /usr/local/bin/%s, which the test cannot build", unit, name)
			}
			bin := filepath.Join(dir, name)
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", pkg, err, out)
			}
			built[name] = bin
		}
		text = execPath.ReplaceAllStringFunc(text, func(s string) string { return built[strings.TrimPrefix(s, "/usr/local/bin/")] })
		copyPath := filepath.Join(dir, filepath.Base(unit))
		if err := os.WriteFile(copyPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(unit), err, out)
		}
	}
	// The gateway's unit: hardening and shutdown as documented.
	b := string(readDeploy(t, "systemd/mimigw.service"))
	for _, want := range []string{"ExecStart=/usr/local/bin/mimigw serve --config /etc/mimigw/mimigw.yaml\n", "\nUser=mimigw\n",
		"\nStateDirectory=mimigw\n", "\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nCapabilityBoundingSet=\n",
		"\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n", "\nMemoryDenyWriteExecute=yes\n", "\nSystemCallFilter=@system-service\n",
		"\nRestart=on-failure\n", "\nEnvironmentFile=-/etc/mimigw/mimigw.env\n"} {
		if !strings.Contains(b, want) {
			t.Errorf("mimigw.service lacks %q", strings.TrimSpace(want))
		}
	}
	stop := regexp.MustCompile(`\nTimeoutStopSec=(\d+)s\n`).FindStringSubmatch(b)
	if stop == nil {
		t.Errorf("mimigw.service: no TimeoutStopSec=<n>s")
	} else if n, _ := strconv.Atoi(stop[1]); n < 60 {
		t.Errorf("mimigw.service: TimeoutStopSec=%ss is shorter than the gateway's drain (consumers 10 s, NATS connection 35 s)", stop[1])
	}
}
