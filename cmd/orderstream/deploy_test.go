package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// deployDir is the repository's deploy/ directory.
func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "..", "..", "deploy")
}

// invocation is how a manifest runs the binary: its arguments and the
// ORDERSTREAM_* variables it sets (name → where, for messages).
type invocation struct {
	where   string
	args    []string
	env     []string
	envFrom []string         // k8s: "ConfigMap/NAME" or "Secret/NAME" of the container's envFrom
	ports   map[string]int32 // container port name → number (k8s)
	pod     *corev1.Container
	// statefulSet is the StatefulSet the container belongs to, "" for
	// other kinds (k8s).
	statefulSet string
}

// probePaths are the health endpoints each daemon serves: relay.Handler
// (producer/relay/relay.go), consumers' health handler (consumers/health.go)
// and the API's mux (internal/api/server.go).
var probePaths = map[string][]string{
	"relay":   {"/healthz", "/livez"},
	"consume": {"/healthz", "/readyz"},
	"api":     {"/healthz", "/readyz"},
}

// checkInvocation fails the test when inv names a command, flag or
// ORDERSTREAM_* variable the binary does not accept, or when its probes
// ask for a path or port its --metrics-addr / --listen does not serve.
func checkInvocation(t *testing.T, inv invocation) {
	t.Helper()
	root := newRootCmd()
	cmd, rest, err := root.Find(inv.args)
	if err != nil || cmd == root {
		t.Errorf("%s: args %q name no command of the binary: %v", inv.where, inv.args, err)
		return
	}
	serve := ""
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		f := cmd.Flags().Lookup(name)
		if f == nil {
			f = cmd.InheritedFlags().Lookup(name)
		}
		if f == nil {
			t.Errorf("%s: %q: flag --%s is not a flag of %q", inv.where, inv.args, name, cmd.CommandPath())
			continue
		}
		if !hasValue && f.Value.Type() != "bool" && i+1 < len(rest) {
			value = rest[i+1]
			i++
		}
		if name == "metrics-addr" || name == "listen" {
			serve = value
		}
	}
	for _, e := range inv.env {
		if !envAccepted(root, e) {
			t.Errorf("%s: variable %s is no setting of the binary (ORDERSTREAM_<FLAG> of a global or daemon flag)", inv.where, e)
		}
	}
	if inv.pod == nil {
		return
	}
	_, port, err := net.SplitHostPort(serve)
	if serve != "" && err != nil {
		t.Errorf("%s: --metrics-addr/--listen %q: %v", inv.where, serve, err)
	}
	for what, p := range map[string]*corev1.Probe{"liveness": inv.pod.LivenessProbe, "readiness": inv.pod.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if served := probePaths[strings.Fields(cmd.CommandPath())[1]]; !slices.Contains(served, p.HTTPGet.Path) {
			t.Errorf("%s: %s probe path %s: %q serves %v", inv.where, what, p.HTTPGet.Path, cmd.CommandPath(), served)
		}
		n := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.StrVal != "" {
			n = inv.ports[p.HTTPGet.Port.StrVal]
		}
		if serve == "" || strconv.Itoa(int(n)) != port {
			t.Errorf("%s: %s probe port %s (%d) is not the port the command serves on (%q)", inv.where, what, p.HTTPGet.Port.String(), n, serve)
		}
	}
}

// envAccepted reports whether ORDERSTREAM_<FLAG> variable e is a setting
// (isSetting) of any command: a global flag, or a daemon command's flag (a
// shared ConfigMap carries every daemon's settings).
func envAccepted(root *cobra.Command, e string) bool {
	flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(e, "ORDERSTREAM_")), "_", "-")
	if root.PersistentFlags().Lookup(flag) != nil {
		return true
	}
	for _, c := range allCommands(root) {
		if f := c.LocalFlags().Lookup(flag); f != nil && isSetting(c, f) {
			return true
		}
	}
	return false
}

func allCommands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		out = append(out, s)
		out = append(out, allCommands(s)...)
	}
	return out
}

// TestDeployKubernetes decodes every document of deploy/k8s strictly
// into its Kubernetes API type (an unknown or misspelt field is an error)
// and checks every orderstream container against the binary: command,
// flags, ORDERSTREAM_* variables, probe paths and ports.
func TestDeployKubernetes(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir(t), "k8s", "*.yaml"))
	jobs, _ := filepath.Glob(filepath.Join(deployDir(t), "k8s", "*", "*.yaml"))
	files = append(files, jobs...)
	if len(files) < 5 {
		t.Fatalf("found %d manifests under deploy/k8s", len(files))
	}
	var invs []invocation
	m := manifests{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{}, statefulSets: map[string]*appsv1.StatefulSet{}, secrets: map[string]*corev1.Secret{}}
	// envSources holds the keys of every ConfigMap and Secret by kind and
	// name: a container's envFrom makes them environment variables (a
	// ConfigMap or Secret mounted as files is no environment).
	envSources := map[string][]string{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			where := fmt.Sprintf("%s#%d", filepath.Base(f), i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var obj any
			var pod *corev1.PodSpec
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				obj, pod = d, &d.Spec.Template.Spec
			case "apps/v1 StatefulSet":
				s := &appsv1.StatefulSet{}
				obj, pod = s, &s.Spec.Template.Spec
			case "batch/v1 Job":
				j := &batchv1.Job{}
				obj, pod = j, &j.Spec.Template.Spec
			case "batch/v1 CronJob":
				j := &batchv1.CronJob{}
				obj, pod = j, &j.Spec.JobTemplate.Spec.Template.Spec
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "networking.k8s.io/v1 NetworkPolicy":
				obj = &networkingv1.NetworkPolicy{}
			default:
				t.Errorf("%s: kind %q of %q is not checked here: add it to TestDeployKubernetes", where, tm.Kind, tm.APIVersion)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			switch o := obj.(type) {
			case *corev1.Service:
				m.services[o.Name] = o
			case *appsv1.StatefulSet:
				m.statefulSets[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
				for k := range o.Data {
					envSources["ConfigMap/"+o.Name] = append(envSources["ConfigMap/"+o.Name], k)
				}
			case *corev1.Secret:
				m.secrets[o.Name] = o
				for k := range o.StringData {
					envSources["Secret/"+o.Name] = append(envSources["Secret/"+o.Name], k)
				}
			}
			if pod == nil {
				continue
			}
			var podLabels map[string]string
			switch o := obj.(type) {
			case *appsv1.Deployment:
				podLabels = o.Spec.Template.Labels
			case *appsv1.StatefulSet:
				podLabels = o.Spec.Template.Labels
			case *batchv1.Job:
				podLabels = o.Spec.Template.Labels
			case *batchv1.CronJob:
				podLabels = o.Spec.JobTemplate.Spec.Template.Labels
			}
			m.podTemplates = append(m.podTemplates, podTemplate{where: where, labels: podLabels, spec: pod})
			for ci := range pod.Containers {
				c := &pod.Containers[ci]
				if c.Image != "orderstream" && !strings.HasPrefix(c.Image, "orderstream:") {
					continue
				}
				inv := invocation{where: where + " " + c.Name, args: c.Args, ports: map[string]int32{}, pod: c}
				if s, ok := obj.(*appsv1.StatefulSet); ok {
					inv.statefulSet = s.Name
				}
				for _, p := range c.Ports {
					inv.ports[p.Name] = p.ContainerPort
				}
				for _, e := range c.Env {
					inv.env = append(inv.env, e.Name)
				}
				for _, from := range c.EnvFrom {
					switch {
					case from.ConfigMapRef != nil:
						inv.envFrom = append(inv.envFrom, "ConfigMap/"+from.ConfigMapRef.Name)
					case from.SecretRef != nil:
						inv.envFrom = append(inv.envFrom, "Secret/"+from.SecretRef.Name)
					}
				}
				invs = append(invs, inv)
			}
		}
	}
	if len(invs) < 5 {
		t.Fatalf("found %d orderstream containers under deploy/k8s", len(invs))
	}
	m.invocations = invs
	checkKubernetesCluster(t, m)
	checkKubernetesReferences(t, m)
	checkKustomizations(t, filepath.Join(deployDir(t), "k8s"))
	for _, inv := range invs {
		for _, src := range inv.envFrom {
			keys, ok := envSources[src]
			if !ok {
				t.Errorf("%s: envFrom %s: no such object under deploy/k8s", inv.where, src)
			}
			inv.env = append(inv.env, keys...)
		}
		checkInvocation(t, inv)
	}
}

// loadCompose loads the compose files (later ones override earlier ones, as
// `docker compose -f A -f B`) with the Compose Specification's own loader:
// schema validation, interpolation, merging (!reset, !override) and
// normalisation.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(deployDir(t), "compose", f))
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithName("orderstream"), cli.WithProfiles([]string{"api", "tools"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return p
}

// checkComposeServices checks every orderstream service of p against the
// binary (command, flags, ORDERSTREAM_* variables) and that every file a
// service binds exists, and returns how many there are.
func checkComposeServices(t *testing.T, p *types.Project) int {
	t.Helper()
	n := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("compose service %s: bind mount of %s: %v", name, v.Target, err)
			}
		}
		if !strings.HasPrefix(s.Image, "orderstream:") {
			continue
		}
		n++
		inv := invocation{where: "compose service " + name, args: s.Command}
		for k := range s.Environment {
			if strings.HasPrefix(k, "ORDERSTREAM_") {
				inv.env = append(inv.env, k)
			}
		}
		checkInvocation(t, inv)
	}
	return n
}

// composeEnv is the value of variable k of service s ("" when unset).
func composeEnv(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// checkComposeKafka checks the Kafka cluster shape: three KRaft brokers,
// replication factor 3 with two in sync, every one of them in the voters
// and named to the clients.
func checkComposeKafka(t *testing.T, p *types.Project) {
	t.Helper()
	brokers := composeEnv(p.Services["relay"], "ORDERSTREAM_KAFKA_BROKERS")
	var voters []string
	rf, minISR := strconv.Itoa(clusterReplication), strconv.Itoa(clusterMinInsync)
	for i := 1; i <= clusterBrokers; i++ {
		name := fmt.Sprintf("kafka-%d", i)
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("compose: no service %s (%d KRaft brokers)", name, clusterBrokers)
			continue
		}
		get := func(k string) string { return composeEnv(s, k) }
		if get("KAFKA_NODE_ID") != strconv.Itoa(i) || get("KAFKA_DEFAULT_REPLICATION_FACTOR") != rf || get("KAFKA_MIN_INSYNC_REPLICAS") != minISR ||
			!slices.Contains(strings.Split(brokers, ","), name+":9092") {
			t.Errorf("compose service %s: node id %q, replication factor %q, min ISR %q, in ORDERSTREAM_KAFKA_BROKERS %v; want %d, %s, %s, listed",
				name, get("KAFKA_NODE_ID"), get("KAFKA_DEFAULT_REPLICATION_FACTOR"), get("KAFKA_MIN_INSYNC_REPLICAS"), strings.Contains(brokers, name), i, rf, minISR)
		}
		if get("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE") != "false" {
			t.Errorf("compose service %s: KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE %q; want false (an unclean election loses acknowledged events)", name, get("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"))
		}
		voters = append(voters, fmt.Sprintf("%d@%s:9093", i, name))
	}
	for i := 1; i <= clusterBrokers; i++ {
		name := fmt.Sprintf("kafka-%d", i)
		if got := composeEnv(p.Services[name], "KAFKA_CONTROLLER_QUORUM_VOTERS"); got != strings.Join(voters, ",") {
			t.Errorf("compose service %s: KAFKA_CONTROLLER_QUORUM_VOTERS %q; want %q", name, got, strings.Join(voters, ","))
		}
	}
}

// TestDeployCompose loads deploy/compose/compose.yaml and checks every
// orderstream service against the binary, and the Kafka cluster shape.
func TestDeployCompose(t *testing.T) {
	p := loadCompose(t, "compose.yaml")
	if n := checkComposeServices(t, p); n < 4 {
		t.Fatalf("found %d orderstream services in compose.yaml", n)
	}
	checkComposeKafka(t, p)
}
