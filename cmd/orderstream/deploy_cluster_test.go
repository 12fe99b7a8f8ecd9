package main

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// The cluster shape both deployments promise (ARCHITECTURE.md, "Running on
// clusters"): three Kafka brokers, topics of replication factor 3 with
// min.insync.replicas 2; ClickHouse as two shards of two replicas; search
// nodes with at least one replica of every shard.
const (
	clusterBrokers     = 3
	clusterReplication = 3
	clusterMinInsync   = 2
	clusterShards      = 2
	clusterReplicas    = 2
)

// manifests holds the decoded objects of deploy/k8s the cluster checks read.
type manifests struct {
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	secrets      map[string]*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	podTemplates []podTemplate
	invocations  []invocation
}

// podTemplate is the pod of a workload (Deployment, StatefulSet, Job,
// CronJob).
type podTemplate struct {
	where  string
	labels map[string]string
	spec   *corev1.PodSpec
}

// chConfig is what the checks read of a ClickHouse server's or Keeper's
// XML configuration (a config.d file). Elements it does not name are
// ignored: ClickHouse has hundreds; these are the ones the cluster's
// consistency rests on.
type chConfig struct {
	XMLName       xml.Name `xml:"clickhouse"`
	TCPPort       int      `xml:"tcp_port"`
	TCPPortSecure int      `xml:"tcp_port_secure"`
	// InterserverHost is the name other replicas fetch this one's parts
	// from.
	InterserverHost chValue `xml:"interserver_http_host"`
	RemoteServers   struct {
		Clusters []chCluster `xml:",any"`
	} `xml:"remote_servers"`
	Zookeeper struct {
		Nodes []chHostPort `xml:"node"`
	} `xml:"zookeeper"`
	Macros *struct {
		Cluster chValue `xml:"cluster"`
		Shard   chValue `xml:"shard"`
		Replica chValue `xml:"replica"`
	} `xml:"macros"`
	Keeper *struct {
		TCPPort  int     `xml:"tcp_port"`
		ServerID chValue `xml:"server_id"`
		Servers  []struct {
			ID       int    `xml:"id"`
			Hostname string `xml:"hostname"`
			Port     int    `xml:"port"`
		} `xml:"raft_configuration>server"`
	} `xml:"keeper_server"`
}

// chValue is a setting given literally or, with from_env, by a variable.
type chValue struct {
	Value   string `xml:",chardata"`
	FromEnv string `xml:"from_env,attr"`
}

type chHostPort struct {
	Host   string `xml:"host"`
	Port   int    `xml:"port"`
	Secure bool   `xml:"secure"`
}

func (h chHostPort) addr() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

type chCluster struct {
	XMLName xml.Name
	Secret  *chValue `xml:"secret"`
	Shards  []struct {
		InternalReplication bool         `xml:"internal_replication"`
		Replicas            []chHostPort `xml:"replica"`
	} `xml:"shard"`
}

func parseCHConfig(t *testing.T, where string, b []byte) chConfig {
	t.Helper()
	var c chConfig
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return c
}

// nativePort is the port a server's remote_servers entry must name: the
// secure native port when the server has one, else the plain one (9000 by
// default).
func (c chConfig) nativePort() int {
	switch {
	case c.TCPPortSecure != 0:
		return c.TCPPortSecure
	case c.TCPPort != 0:
		return c.TCPPort
	}
	return 9000
}

var fromEnvRE = regexp.MustCompile(`from_env="([^"]+)"`)

// checkFromEnv checks that every variable a ClickHouse config file reads
// (from_env) is set for the server: in its environment (env) or exported
// by its start script.
func checkFromEnv(t *testing.T, where string, config []byte, env []string, script string) {
	t.Helper()
	for _, m := range fromEnvRE.FindAllStringSubmatch(string(config), -1) {
		if !slices.Contains(env, m[1]) && !strings.Contains(script, "export "+m[1]+"=") {
			t.Errorf("%s: reads variable %s (from_env), which the server's environment and start script do not set", where, m[1])
		}
	}
}

// chNode is one ClickHouse server as a deployment runs it: its address
// and its macros, resolved.
type chNode struct {
	where          string
	addr           string
	shard, replica string
}

// checkClickHouseCluster checks that cluster (the --clickhouse-cluster
// value) is a remote_servers entry of cfg, with clusterShards shards of
// clusterReplicas replicas and internal_replication on; that nodes are
// exactly its replicas, each with the shard macro of the shard that lists
// it; that every (shard, replica) macro pair, and every replica macro, is
// unique (the tables kept on every node replicate under one path with
// {replica} alone); and that clientAddrs (ORDERSTREAM_CLICKHOUSE_ADDR)
// names every server.
func checkClickHouseCluster(t *testing.T, where string, cfg chConfig, cluster string, nodes []chNode, clientAddrs string) {
	t.Helper()
	var c *chCluster
	var names []string
	for i := range cfg.RemoteServers.Clusters {
		names = append(names, cfg.RemoteServers.Clusters[i].XMLName.Local)
		if cfg.RemoteServers.Clusters[i].XMLName.Local == cluster {
			c = &cfg.RemoteServers.Clusters[i]
		}
	}
	if c == nil {
		t.Errorf("%s: ORDERSTREAM_CLICKHOUSE_CLUSTER %q is not a cluster of remote_servers %v", where, cluster, names)
		return
	}
	if len(c.Shards) != clusterShards {
		t.Errorf("%s: cluster %s has %d shards; want %d", where, cluster, len(c.Shards), clusterShards)
	}
	shardOf := map[string]string{} // host:port → shard number (1-based)
	for i, s := range c.Shards {
		if !s.InternalReplication {
			t.Errorf("%s: cluster %s shard %d: internal_replication is off (a Distributed insert would write every replica itself, and a down one fails it)", where, cluster, i+1)
		}
		if len(s.Replicas) != clusterReplicas {
			t.Errorf("%s: cluster %s shard %d has %d replicas; want %d", where, cluster, i+1, len(s.Replicas), clusterReplicas)
		}
		for _, r := range s.Replicas {
			if _, dup := shardOf[r.addr()]; dup {
				t.Errorf("%s: cluster %s lists %s twice", where, cluster, r.addr())
			}
			shardOf[r.addr()] = strconv.Itoa(i + 1)
		}
	}
	pairs, replicas, seen := map[string]string{}, map[string]string{}, map[string]bool{}
	for _, n := range nodes {
		shard, listed := shardOf[n.addr]
		switch {
		case !listed:
			t.Errorf("%s: %s (%s) is no replica of cluster %s in remote_servers", where, n.where, n.addr, cluster)
		case n.shard != shard:
			t.Errorf("%s: %s (%s) has shard macro %q, but remote_servers lists it in shard %s", where, n.where, n.addr, n.shard, shard)
		}
		seen[n.addr] = true
		if n.replica == "" {
			t.Errorf("%s: %s has no replica macro", where, n.where)
		}
		pair := n.shard + "/" + n.replica
		if other, dup := pairs[pair]; dup {
			t.Errorf("%s: %s and %s share the macros shard %q replica %q", where, other, n.where, n.shard, n.replica)
		}
		pairs[pair] = n.where
		if other, dup := replicas[n.replica]; dup {
			t.Errorf("%s: %s and %s share the replica macro %q (it must be unique in the cluster: tables on every node replicate by {replica} alone)", where, other, n.where, n.replica)
		}
		replicas[n.replica] = n.where
	}
	for addr := range shardOf {
		if !seen[addr] {
			t.Errorf("%s: remote_servers names %s, which no ClickHouse server of the deployment is", where, addr)
		}
	}
	var got []string
	for _, a := range strings.Split(clientAddrs, ",") {
		got = append(got, strings.TrimSpace(a))
	}
	var want []string
	for addr := range shardOf {
		want = append(want, addr)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: ORDERSTREAM_CLICKHOUSE_ADDR names %v; want every server of cluster %s: %v", where, got, cluster, want)
	}
}

// checkKeeper checks that the ClickHouse servers' <zookeeper> nodes are
// exactly the Keeper servers (keepers: host → Keeper config, its
// raft_configuration naming every peer by that host with unique ids).
func checkKeeper(t *testing.T, where string, cfg chConfig, keepers map[string]chConfig) {
	t.Helper()
	var zk, want []string
	for _, n := range cfg.Zookeeper.Nodes {
		zk = append(zk, n.addr())
	}
	var raft []string
	for host, k := range keepers {
		if k.Keeper == nil {
			t.Errorf("%s: Keeper %s has no keeper_server section", where, host)
			continue
		}
		want = append(want, net.JoinHostPort(host, strconv.Itoa(k.Keeper.TCPPort)))
		var peers []string
		ids := map[int]bool{}
		for _, s := range k.Keeper.Servers {
			peers = append(peers, s.Hostname)
			if ids[s.ID] {
				t.Errorf("%s: Keeper %s: raft server id %d twice", where, host, s.ID)
			}
			ids[s.ID] = true
		}
		slices.Sort(peers)
		if raft != nil && !slices.Equal(raft, peers) {
			t.Errorf("%s: Keeper %s names peers %v, another %v", where, host, peers, raft)
		}
		raft = peers
	}
	var hosts []string
	for h := range keepers {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	if !slices.Equal(raft, hosts) {
		t.Errorf("%s: Keeper raft_configuration names %v; want every Keeper server: %v", where, raft, hosts)
	}
	if len(hosts)%2 == 0 {
		t.Errorf("%s: %d Keeper servers: a quorum needs an odd number", where, len(hosts))
	}
	slices.Sort(zk)
	slices.Sort(want)
	if len(zk) == 0 || !slices.Equal(zk, want) {
		t.Errorf("%s: <zookeeper> names %v; want every Keeper server: %v", where, zk, want)
	}
}

// checkSearchReplicas checks ORDERSTREAM_SEARCH_REPLICAS against nodes
// search nodes: at least one replica (a node's loss loses no document),
// and no more than the other nodes can hold (else the index stays yellow).
func checkSearchReplicas(t *testing.T, where, replicas string, nodes int) {
	t.Helper()
	r, err := strconv.Atoi(replicas)
	if err != nil || r < 1 || r > nodes-1 {
		t.Errorf("%s: ORDERSTREAM_SEARCH_REPLICAS %q on %d search nodes; want 1 to %d", where, replicas, nodes, nodes-1)
	}
}

// TestDeployComposeCluster loads compose.yaml with its cluster override
// cluster.yaml, checks every orderstream service against the binary, and
// checks the cluster shape: Kafka as in compose.yaml; ClickHouse servers
// whose remote_servers, macros and Keeper agree with each other and with
// the daemons' settings; search nodes that form one cluster and that the
// daemons name.
func TestDeployComposeCluster(t *testing.T) {
	p := loadCompose(t, "compose.yaml", "cluster.yaml")
	if n := checkComposeServices(t, p); n < 4 {
		t.Fatalf("found %d orderstream services in compose.yaml + cluster.yaml", n)
	}
	checkComposeKafka(t, p)
	for _, single := range []string{"clickhouse", "elasticsearch"} {
		if _, ok := p.Services[single]; ok {
			t.Errorf("compose cluster: the single-node service %s is still there", single)
		}
	}

	// Every orderstream container has the same cluster settings.
	settings := map[string]string{}
	for name, s := range p.Services {
		if !strings.HasPrefix(s.Image, "orderstream:") {
			continue
		}
		for _, k := range []string{"ORDERSTREAM_CLICKHOUSE_CLUSTER", "ORDERSTREAM_CLICKHOUSE_ADDR", "ORDERSTREAM_SEARCH_URL", "ORDERSTREAM_SEARCH_REPLICAS"} {
			v := composeEnv(s, k)
			if v == "" {
				t.Errorf("compose cluster service %s: %s is not set", name, k)
			}
			if prev, ok := settings[k]; ok && prev != v {
				t.Errorf("compose cluster service %s: %s %q, another orderstream service has %q", name, k, v, prev)
			}
			settings[k] = v
		}
	}

	// ClickHouse: the services with a macros file.
	const configD = "/etc/clickhouse-server/config.d/"
	var nodes []chNode
	clusterXML := ""
	var cfg chConfig
	keepers := map[string]chConfig{}
	for name, s := range p.Services {
		mounts := map[string]string{}
		for _, v := range s.Volumes {
			mounts[v.Target] = v.Source
		}
		host := s.Hostname
		if host == "" {
			host = name
		}
		if k, ok := mounts["/etc/clickhouse-keeper/keeper.xml"]; ok {
			keepers[host] = parseCHConfig(t, k, readFile(t, k))
		}
		macrosFile, ok := mounts[configD+"macros.xml"]
		if !ok {
			continue
		}
		where := "compose service " + name
		switch c := mounts[configD+"cluster.xml"]; {
		case c == "":
			t.Errorf("%s: no %scluster.xml", where, configD)
		case clusterXML == "":
			clusterXML, cfg = c, parseCHConfig(t, c, readFile(t, c))
		case c != clusterXML:
			t.Errorf("%s: mounts %s as cluster.xml, another server %s", where, c, clusterXML)
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		script := strings.Join(s.Entrypoint, " ")
		for _, f := range []string{mounts[configD+"cluster.xml"], macrosFile} {
			checkFromEnv(t, where+" "+filepath.Base(f), readFile(t, f), env, script)
		}
		m := parseCHConfig(t, macrosFile, readFile(t, macrosFile))
		if m.Macros == nil {
			t.Errorf("%s: %s has no <macros>", where, macrosFile)
			continue
		}
		if m.Macros.Cluster.Value != "" && m.Macros.Cluster.Value != settings["ORDERSTREAM_CLICKHOUSE_CLUSTER"] {
			t.Errorf("%s: cluster macro %q, ORDERSTREAM_CLICKHOUSE_CLUSTER %q", where, m.Macros.Cluster.Value, settings["ORDERSTREAM_CLICKHOUSE_CLUSTER"])
		}
		nodes = append(nodes, chNode{where: where, addr: net.JoinHostPort(host, strconv.Itoa(cfg.nativePort())), shard: m.Macros.Shard.Value, replica: m.Macros.Replica.Value})
	}
	if len(nodes) != clusterShards*clusterReplicas {
		t.Fatalf("compose cluster: %d ClickHouse servers (services mounting %smacros.xml); want %d", len(nodes), configD, clusterShards*clusterReplicas)
	}
	checkClickHouseCluster(t, "compose cluster "+clusterXML, cfg, settings["ORDERSTREAM_CLICKHOUSE_CLUSTER"], nodes, settings["ORDERSTREAM_CLICKHOUSE_ADDR"])
	checkKeeper(t, "compose cluster", cfg, keepers)

	// Search: the services of the Elasticsearch image.
	var searchNodes []string
	for name, s := range p.Services {
		if !strings.HasPrefix(s.Image, "docker.elastic.co/elasticsearch/") {
			continue
		}
		searchNodes = append(searchNodes, name)
		if got := composeEnv(s, "node.name"); got != name || s.Hostname != name {
			t.Errorf("compose service %s: node.name %q, hostname %q; want both %s", name, got, s.Hostname, name)
		}
	}
	slices.Sort(searchNodes)
	if len(searchNodes) < 2 {
		t.Fatalf("compose cluster: %d search nodes; want 2 or more", len(searchNodes))
	}
	var urls []string
	for _, u := range strings.Split(settings["ORDERSTREAM_SEARCH_URL"], ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			t.Errorf("compose cluster: ORDERSTREAM_SEARCH_URL %q: %v", u, err)
			continue
		}
		urls = append(urls, pu.Hostname())
	}
	slices.Sort(urls)
	if !slices.Equal(urls, searchNodes) {
		t.Errorf("compose cluster: ORDERSTREAM_SEARCH_URL names %v; want every search node %v", urls, searchNodes)
	}
	for _, name := range searchNodes {
		s := p.Services[name]
		for _, k := range []string{"discovery.seed_hosts", "cluster.initial_master_nodes"} {
			got := strings.Split(composeEnv(s, k), ",")
			slices.Sort(got)
			if !slices.Equal(got, searchNodes) {
				t.Errorf("compose service %s: %s %v; want every search node %v", name, k, got, searchNodes)
			}
		}
	}
	checkSearchReplicas(t, "compose cluster", settings["ORDERSTREAM_SEARCH_REPLICAS"], len(searchNodes))
}

// podEnv resolves variable name of container c in pod: a literal value
// (with $(VAR) references to earlier variables expanded) or the pod's
// name from the downward API. ok is false when c does not set it.
func podEnv(c *corev1.Container, pod, name string) (value string, ok bool) {
	vals := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if f := e.ValueFrom.FieldRef; f != nil && f.FieldPath == "metadata.name" {
				v = pod
			} else {
				v = "<" + e.Name + " from elsewhere>"
			}
		}
		for k, kv := range vals {
			v = strings.ReplaceAll(v, "$("+k+")", kv)
		}
		vals[e.Name] = v
	}
	value, ok = vals[name]
	return value, ok
}

// macroValue resolves a ClickHouse setting of container c in pod.
func macroValue(c *corev1.Container, pod string, v chValue) string {
	if v.FromEnv == "" {
		return strings.TrimSpace(v.Value)
	}
	s, _ := podEnv(c, pod, v.FromEnv)
	return s
}

// pods are the pod names and stable DNS names (<pod>.<serviceName>) of s.
func pods(s *appsv1.StatefulSet) (names, hosts []string) {
	n := int32(1)
	if s.Spec.Replicas != nil {
		n = *s.Spec.Replicas
	}
	for i := range n {
		name := fmt.Sprintf("%s-%d", s.Name, i)
		names = append(names, name)
		hosts = append(hosts, name+"."+s.Spec.ServiceName)
	}
	return names, hosts
}

// configFile is the content of the file a container of s reads at path:
// a key of a ConfigMap volume mounted at path's directory.
func configFile(t *testing.T, m manifests, s *appsv1.StatefulSet, c *corev1.Container, path string) []byte {
	t.Helper()
	dir, base := filepath.Split(path)
	for _, vm := range c.VolumeMounts {
		if strings.TrimSuffix(vm.MountPath, "/")+"/" != dir {
			continue
		}
		for _, v := range s.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			key := base
			for _, it := range v.ConfigMap.Items {
				if it.Path == base {
					key = it.Key
				}
			}
			cm, ok := m.configMaps[v.ConfigMap.Name]
			if !ok {
				t.Errorf("StatefulSet %s: volume %s: no ConfigMap %s under deploy/k8s", s.Name, v.Name, v.ConfigMap.Name)
				return nil
			}
			if d, ok := cm.Data[key]; ok {
				return []byte(d)
			}
		}
	}
	t.Errorf("StatefulSet %s container %s: no ConfigMap gives %s", s.Name, c.Name, path)
	return nil
}

func selects(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkKubernetesCluster checks the cluster shape of deploy/k8s: every
// StatefulSet behind a headless governing Service and a
// PodDisruptionBudget; the data services' quorums able to form; each
// consumer's instance id its pod's name; and Kafka, ClickHouse, Keeper and
// Elasticsearch consistent with each other and with orderstream-config.
func checkKubernetesCluster(t *testing.T, m manifests) {
	t.Helper()
	cmap, ok := m.configMaps["orderstream-config"]
	if !ok {
		t.Fatal("deploy/k8s: no ConfigMap orderstream-config")
	}
	config := cmap.Data

	for name, s := range m.statefulSets {
		where := "StatefulSet " + name
		labels := s.Spec.Template.Labels
		svc, ok := m.services[s.Spec.ServiceName]
		if !ok || svc.Spec.ClusterIP != "None" || !selects(svc.Spec.Selector, labels) {
			t.Errorf("%s: serviceName %q is no headless Service selecting its pods (the pods' stable DNS names)", where, s.Spec.ServiceName)
		}
		if !selects(s.Spec.Selector.MatchLabels, labels) {
			t.Errorf("%s: selector %v does not select its template's labels %v", where, s.Spec.Selector.MatchLabels, labels)
		}
		covered := false
		for _, pdb := range m.pdbs {
			covered = covered || (pdb.Spec.Selector != nil && selects(pdb.Spec.Selector.MatchLabels, labels))
		}
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", where)
		}
		if img := s.Spec.Template.Spec.Containers[0].Image; img == "orderstream" || strings.HasPrefix(img, "orderstream:") {
			continue
		}
		// A data service: its pods find each other before they are ready,
		// and start together (a quorum of one is not ready).
		if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("%s: podManagementPolicy %q; want Parallel (OrderedReady waits for pod 0 to be ready, which needs a quorum)", where, s.Spec.PodManagementPolicy)
		}
		if ok && !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: publishNotReadyAddresses is off; peers of StatefulSet %s would not resolve each other before ready", svc.Name, name)
		}
	}

	// Consumers: a static group member per pod, named by the pod.
	for _, inv := range m.invocations {
		if len(inv.args) == 0 || inv.args[0] != "consume" {
			continue
		}
		id, ok := podEnv(inv.pod, "POD", "ORDERSTREAM_INSTANCE_ID")
		if inv.statefulSet == "" || !ok || id != "POD" || slices.ContainsFunc(inv.args, func(a string) bool { return strings.HasPrefix(a, "--instance-id") }) {
			t.Errorf("%s: a consumer runs in a StatefulSet with ORDERSTREAM_INSTANCE_ID = its pod's name (fieldRef metadata.name) and no --instance-id, so that a restarted pod takes its partitions back", inv.where)
		}
	}

	checkKubernetesKafka(t, m, config)
	checkKubernetesClickHouse(t, m, config)
	checkKubernetesSearch(t, m, config)
}

func checkKubernetesKafka(t *testing.T, m manifests, config map[string]string) {
	t.Helper()
	s, ok := m.statefulSets["kafka"]
	if !ok {
		t.Error("deploy/k8s: no StatefulSet kafka")
		return
	}
	c := &s.Spec.Template.Spec.Containers[0]
	props := map[string]string{}
	for _, line := range strings.Split(string(configFile(t, m, s, c, "/etc/kafka/config/server.properties")), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	where := "StatefulSet kafka server.properties"
	for k, want := range map[string]string{
		"default.replication.factor":               strconv.Itoa(clusterReplication),
		"min.insync.replicas":                      strconv.Itoa(clusterMinInsync),
		"offsets.topic.replication.factor":         strconv.Itoa(clusterReplication),
		"transaction.state.log.replication.factor": strconv.Itoa(clusterReplication),
		"transaction.state.log.min.isr":            strconv.Itoa(clusterMinInsync),
		"unclean.leader.election.enable":           "false",
		"process.roles":                            "broker,controller",
	} {
		if props[k] != want {
			t.Errorf("%s: %s = %q; want %q", where, k, props[k], want)
		}
	}
	if _, ok := props["node.id"]; ok {
		t.Errorf("%s: node.id is set for every pod; each pod derives its own from its ordinal", where)
	}
	// listener name → port and protocol.
	port := map[string]string{}
	for _, l := range strings.Split(props["listeners"], ",") {
		name, addr, _ := strings.Cut(l, "://")
		_, p, _ := net.SplitHostPort(addr)
		port[name] = p
	}
	protocol := map[string]string{}
	for _, kv := range strings.Split(props["listener.security.protocol.map"], ",") {
		k, v, _ := strings.Cut(kv, ":")
		protocol[k] = v
	}
	_, hosts := pods(s)
	if len(hosts) != clusterBrokers {
		t.Errorf("StatefulSet kafka: %d replicas; want %d", len(hosts), clusterBrokers)
	}
	var voters, brokers []string
	for i, h := range hosts {
		voters = append(voters, fmt.Sprintf("%d@%s:%s", i, h, port[props["controller.listener.names"]]))
	}
	if got := props["controller.quorum.voters"]; got != strings.Join(voters, ",") {
		t.Errorf("%s: controller.quorum.voters %q; want every pod by its stable name, id = ordinal: %q", where, got, strings.Join(voters, ","))
	}
	// The clients' listener: the port ORDERSTREAM_KAFKA_BROKERS names, with
	// the security orderstream-config asks for.
	var clientPort string
	for _, b := range strings.Split(config["ORDERSTREAM_KAFKA_BROKERS"], ",") {
		_, p, _ := net.SplitHostPort(b)
		clientPort = p
	}
	var listener string
	for name, p := range port {
		if p == clientPort {
			listener = name
		}
	}
	wantProtocol := map[[2]bool]string{{false, false}: "PLAINTEXT", {true, false}: "SSL", {false, true}: "SASL_PLAINTEXT", {true, true}: "SASL_SSL"}[[2]bool{config["ORDERSTREAM_KAFKA_TLS"] == "true", config["ORDERSTREAM_KAFKA_SASL_MECHANISM"] != ""}]
	if listener == "" || protocol[listener] != wantProtocol {
		t.Errorf("%s: ORDERSTREAM_KAFKA_BROKERS port %s is listener %q of protocol %q; orderstream-config connects with %s", where, clientPort, listener, protocol[listener], wantProtocol)
	}
	for _, h := range hosts {
		brokers = append(brokers, net.JoinHostPort(h, clientPort))
	}
	if got := config["ORDERSTREAM_KAFKA_BROKERS"]; got != strings.Join(brokers, ",") {
		t.Errorf("orderstream-config: ORDERSTREAM_KAFKA_BROKERS %q; want every broker: %q", got, strings.Join(brokers, ","))
	}
	if mech := config["ORDERSTREAM_KAFKA_SASL_MECHANISM"]; mech != "" && !strings.Contains(props["sasl.enabled.mechanisms"], mech) {
		t.Errorf("%s: sasl.enabled.mechanisms %q lacks orderstream's %s", where, props["sasl.enabled.mechanisms"], mech)
	}
}

func checkKubernetesClickHouse(t *testing.T, m manifests, config map[string]string) {
	t.Helper()
	var nodes []chNode
	var cfg chConfig
	var cfgText []byte
	for _, name := range slices.Sorted(maps.Keys(m.statefulSets)) {
		s := m.statefulSets[name]
		if s.Spec.Template.Labels["app.kubernetes.io/component"] != "clickhouse-server" {
			continue
		}
		c := &s.Spec.Template.Spec.Containers[0]
		b := configFile(t, m, s, c, "/etc/clickhouse-server/config.d/cluster.xml")
		switch {
		case cfgText == nil:
			cfgText, cfg = b, parseCHConfig(t, "StatefulSet "+name+" cluster.xml", b)
		case string(b) != string(cfgText):
			t.Errorf("StatefulSet %s: its cluster.xml differs from another shard's", name)
		}
		if cfg.Macros == nil {
			t.Errorf("StatefulSet %s: cluster.xml has no <macros>", name)
			continue
		}
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		script := strings.Join(c.Command, " ")
		checkFromEnv(t, "StatefulSet "+name+" cluster.xml", b, env, script)
		checkFromEnv(t, "StatefulSet "+name+" users.d", configFile(t, m, s, c, "/etc/clickhouse-server/users.d/orderstream.xml"), env, script)
		names, hosts := pods(s)
		for i, pod := range names {
			if cfg.InterserverHost.FromEnv != "" {
				if got := macroValue(c, pod, cfg.InterserverHost); got != hosts[i] {
					t.Errorf("pod %s: interserver_http_host %q; want its stable name %s (replicas fetch parts from it)", pod, got, hosts[i])
				}
			}
			nodes = append(nodes, chNode{
				where: "pod " + pod, addr: net.JoinHostPort(hosts[i], strconv.Itoa(cfg.nativePort())),
				shard: macroValue(c, pod, cfg.Macros.Shard), replica: macroValue(c, pod, cfg.Macros.Replica),
			})
		}
	}
	if len(nodes) != clusterShards*clusterReplicas {
		t.Errorf("deploy/k8s: %d ClickHouse server pods (StatefulSets of component clickhouse-server); want %d", len(nodes), clusterShards*clusterReplicas)
		return
	}
	if got := cfg.Macros.Cluster.Value; got != config["ORDERSTREAM_CLICKHOUSE_CLUSTER"] {
		t.Errorf("clickhouse cluster.xml: cluster macro %q; ORDERSTREAM_CLICKHOUSE_CLUSTER %q", got, config["ORDERSTREAM_CLICKHOUSE_CLUSTER"])
	}
	for _, cl := range cfg.RemoteServers.Clusters {
		for _, sh := range cl.Shards {
			for _, r := range sh.Replicas {
				if r.Secure != (cfg.TCPPortSecure != 0) {
					t.Errorf("clickhouse cluster.xml: replica %s secure=%v, the servers' native port is %d", r.addr(), r.Secure, cfg.nativePort())
				}
			}
		}
	}
	checkClickHouseCluster(t, "deploy/k8s ClickHouse", cfg, config["ORDERSTREAM_CLICKHOUSE_CLUSTER"], nodes, config["ORDERSTREAM_CLICKHOUSE_ADDR"])

	k, ok := m.statefulSets["clickhouse-keeper"]
	if !ok {
		t.Error("deploy/k8s: no StatefulSet clickhouse-keeper")
		return
	}
	c := &k.Spec.Template.Spec.Containers[0]
	kb := configFile(t, m, k, c, "/etc/clickhouse-keeper/keeper.xml")
	kcfg := parseCHConfig(t, "clickhouse-keeper keeper.xml", kb)
	checkFromEnv(t, "clickhouse-keeper keeper.xml", kb, nil, strings.Join(c.Command, " "))
	keepers := map[string]chConfig{}
	names, hosts := pods(k)
	for i, h := range hosts {
		keepers[h] = kcfg
		if kcfg.Keeper == nil {
			continue
		}
		// Each pod's server_id is ordinal + 1 (its command), the id
		// raft_configuration gives its host.
		for _, srv := range kcfg.Keeper.Servers {
			if srv.Hostname == h && srv.ID != i+1 {
				t.Errorf("clickhouse-keeper keeper.xml: %s has raft id %d; pod %s takes server_id %d", h, srv.ID, names[i], i+1)
			}
		}
	}
	checkKeeper(t, "deploy/k8s ClickHouse", cfg, keepers)
}

func checkKubernetesSearch(t *testing.T, m manifests, config map[string]string) {
	t.Helper()
	s, ok := m.statefulSets["elasticsearch"]
	if !ok {
		t.Error("deploy/k8s: no StatefulSet elasticsearch")
		return
	}
	c := &s.Spec.Template.Spec.Containers[0]
	names, hosts := pods(s)
	for _, pod := range names {
		where := "StatefulSet elasticsearch pod " + pod
		if got, _ := podEnv(c, pod, "node.name"); got != pod {
			t.Errorf("%s: node.name %q; want the pod's name", where, got)
		}
		for k, want := range map[string][]string{"discovery.seed_hosts": hosts, "cluster.initial_master_nodes": names} {
			v, _ := podEnv(c, pod, k)
			if got := strings.Split(v, ","); !slices.Equal(got, want) {
				t.Errorf("%s: %s %v; want every node %v", where, k, got, want)
			}
		}
	}
	checkSearchReplicas(t, "orderstream-config", config["ORDERSTREAM_SEARCH_REPLICAS"], len(names))
	for _, u := range strings.Split(config["ORDERSTREAM_SEARCH_URL"], ",") {
		pu, err := url.Parse(u)
		if err != nil {
			t.Errorf("orderstream-config: ORDERSTREAM_SEARCH_URL %q: %v", u, err)
			continue
		}
		svc, ok := m.services[pu.Hostname()]
		if !ok || !selects(svc.Spec.Selector, s.Spec.Template.Labels) {
			t.Errorf("orderstream-config: ORDERSTREAM_SEARCH_URL host %s is no Service of the search nodes", pu.Hostname())
			continue
		}
		served := false
		for _, p := range svc.Spec.Ports {
			served = served || strconv.Itoa(int(p.Port)) == pu.Port()
		}
		if !served {
			t.Errorf("orderstream-config: ORDERSTREAM_SEARCH_URL port %s is no port of Service %s", pu.Port(), svc.Name)
		}
	}
}

// checkKustomizations checks every kustomization.yaml under dir: each
// resource it lists exists, and each manifest beside it is listed (a file
// left out would never be applied).
func checkKustomizations(t *testing.T, dir string) {
	t.Helper()
	kusts, _ := filepath.Glob(filepath.Join(dir, "kustomization.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "kustomization.yaml"))
	kusts = append(kusts, more...)
	if len(kusts) < 2 {
		t.Errorf("deploy/k8s: %d kustomizations; want the base and the cluster overlay", len(kusts))
	}
	for _, k := range kusts {
		var kust struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(readFile(t, k), &kust); err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		base := filepath.Dir(k)
		for _, r := range kust.Resources {
			if _, err := os.Stat(filepath.Join(base, r)); err != nil {
				t.Errorf("%s: resource %s: %v", k, r, err)
			}
		}
		files, _ := filepath.Glob(filepath.Join(base, "*.yaml"))
		for _, f := range files {
			if rel := filepath.Base(f); rel != "kustomization.yaml" && !slices.Contains(kust.Resources, rel) {
				t.Errorf("%s: %s is not among its resources", k, rel)
			}
		}
	}
}

// checkKubernetesReferences checks what refers to something else by name:
// each probe's named port is one of its container's ports; each Service
// selects some workload's pods, which declare its named target ports; each
// ConfigMap or Secret a volume or an env variable names exists under
// deploy/k8s with the keys it asks for.
func checkKubernetesReferences(t *testing.T, m manifests) {
	t.Helper()
	for _, p := range m.podTemplates {
		for _, c := range p.spec.Containers {
			declared := map[string]bool{}
			for _, cp := range c.Ports {
				declared[cp.Name] = true
			}
			for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				if pr == nil {
					continue
				}
				var port string
				switch {
				case pr.HTTPGet != nil:
					port = pr.HTTPGet.Port.StrVal
				case pr.TCPSocket != nil:
					port = pr.TCPSocket.Port.StrVal
				}
				if port != "" && !declared[port] {
					t.Errorf("%s container %s: %s probe port %q is none of its ports", p.where, c.Name, what, port)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					checkKeyRef(t, m, p.where, "Secret", r.Name, r.Key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					checkKeyRef(t, m, p.where, "ConfigMap", r.Name, r.Key)
				}
			}
		}
		for _, v := range p.spec.Volumes {
			switch {
			case v.Secret != nil:
				checkKeyRef(t, m, p.where+" volume "+v.Name, "Secret", v.Secret.SecretName, "")
				for _, it := range v.Secret.Items {
					checkKeyRef(t, m, p.where+" volume "+v.Name, "Secret", v.Secret.SecretName, it.Key)
				}
			case v.ConfigMap != nil:
				checkKeyRef(t, m, p.where+" volume "+v.Name, "ConfigMap", v.ConfigMap.Name, "")
				for _, it := range v.ConfigMap.Items {
					checkKeyRef(t, m, p.where+" volume "+v.Name, "ConfigMap", v.ConfigMap.Name, it.Key)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.services)) {
		svc := m.services[name]
		var selected []podTemplate
		for _, p := range m.podTemplates {
			if selects(svc.Spec.Selector, p.labels) {
				selected = append(selected, p)
			}
		}
		if len(selected) == 0 {
			t.Errorf("Service %s: its selector %v selects no workload's pods", name, svc.Spec.Selector)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort.StrVal
			if target == "" {
				continue
			}
			for _, p := range selected {
				found := false
				for _, c := range p.spec.Containers {
					for _, cp := range c.Ports {
						found = found || cp.Name == target
					}
				}
				if !found {
					t.Errorf("Service %s port %s: target port %q is no port of %s", name, sp.Name, target, p.where)
				}
			}
		}
	}
}

// checkKeyRef checks that the ConfigMap or Secret name exists under
// deploy/k8s and, when key is not "", has key.
func checkKeyRef(t *testing.T, m manifests, where, kind, name, key string) {
	t.Helper()
	var keys []string
	switch kind {
	case "Secret":
		s, ok := m.secrets[name]
		if !ok {
			t.Errorf("%s: no Secret %s under deploy/k8s", where, name)
			return
		}
		keys = slices.Collect(maps.Keys(s.StringData))
		keys = slices.AppendSeq(keys, maps.Keys(s.Data))
	case "ConfigMap":
		c, ok := m.configMaps[name]
		if !ok {
			t.Errorf("%s: no ConfigMap %s under deploy/k8s", where, name)
			return
		}
		keys = slices.Collect(maps.Keys(c.Data))
	}
	if key != "" && !slices.Contains(keys, key) {
		t.Errorf("%s: %s %s has no key %q (it has %v)", where, kind, name, key, keys)
	}
}

var k8sImageRE = regexp.MustCompile(`(?m)^\s*image:\s*"?([^\s"#]+)`)

// TestDeployImagesAgree checks that deploy/compose and deploy/k8s run the
// same release of every service image both use, so that what one was
// tried with is what the other deploys.
func TestDeployImagesAgree(t *testing.T) {
	compose := map[string]string{} // repository → tag
	for _, s := range loadCompose(t, "compose.yaml", "cluster.yaml").Services {
		repo, tag, _ := strings.Cut(s.Image, ":")
		compose[repo] = tag
	}
	files, _ := filepath.Glob(filepath.Join(deployDir(t), "k8s", "*", "*.yaml"))
	shared := 0
	for _, f := range files {
		for _, m := range k8sImageRE.FindAllStringSubmatch(string(readFile(t, f)), -1) {
			repo, tag, _ := strings.Cut(m[1], ":")
			if repo == "orderstream" {
				continue
			}
			want, ok := compose[repo]
			if !ok {
				continue
			}
			shared++
			if tag != want {
				t.Errorf("%s: image %s; deploy/compose runs %s:%s", filepath.Base(f), m[1], repo, want)
			}
		}
	}
	if shared < 3 {
		t.Errorf("deploy/k8s and deploy/compose share %d service images; want Kafka, ClickHouse and Elasticsearch", shared)
	}
}
