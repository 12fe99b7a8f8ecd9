package orderstream.local.opensearch;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.ExtensiblePlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single-node OpenSearch for local development, tests and demos.
 *
 * <p>The node and its plugins are the stock 2.19.6 jars, so the REST API behaves like a real
 * server. What is skipped is the distribution's launcher, {@code org.opensearch.bootstrap}:
 * keystore, security manager, jar-hell check, native setup (mlockall, seccomp, the refusal to
 * run as root) and the production bootstrap checks ({@link Node} only calls an empty hook for
 * those). So the node starts as root, which CI needs; it only ever listens on 127.0.0.1.
 *
 * <p>Configuration comes from the environment:
 * <ul>
 *   <li>ORDERSTREAM_LOCAL_DIR (default ".local"): state lives in $ORDERSTREAM_LOCAL_DIR/opensearch</li>
 *   <li>ORDERSTREAM_SEARCH_PORT (default 59200): HTTP port</li>
 *   <li>ORDERSTREAM_SEARCH_TRANSPORT_PORT (default 59300): transport port</li>
 * </ul>
 *
 * <p>Cluster profile (deploy/local/lib/cluster.sh): with ORDERSTREAM_SEARCH_SEED_HOSTS set (comma-separated
 * host:transport-port of every node) the node joins a multi-node cluster instead of running single-node.
 * ORDERSTREAM_SEARCH_CLUSTER_MANAGER names the cluster-manager-eligible nodes, comma-separated, the same
 * list on every node (they bootstrap the cluster: cluster.initial_cluster_manager_nodes; default this
 * node), ORDERSTREAM_SEARCH_NODE_ROLES this node's node.roles, comma-separated (default
 * "cluster_manager,data,ingest" on a node of that list, "data,ingest" on the others),
 * ORDERSTREAM_SEARCH_NODE_NAME this node's name and ORDERSTREAM_SEARCH_CLUSTER_NAME the cluster's
 * (default "orderstream-local").
 */
public final class EmbeddedNode {

    static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,
        CommonAnalysisPlugin.class,
        PainlessPlugin.class,
        ReindexPlugin.class,
        MapperExtrasPlugin.class
    );

    /** Node's plugin-taking constructor is protected; this is the only reason to subclass. */
    static final class LocalNode extends Node {
        LocalNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private EmbeddedNode() {}

    static Path stateDir() {
        String local = System.getenv().getOrDefault("ORDERSTREAM_LOCAL_DIR", "");
        Path base = local.isEmpty() ? Path.of(".local") : Path.of(local);
        return base.resolve("opensearch").toAbsolutePath().normalize();
    }

    static int envPort(String name, int fallback) {
        return Integer.parseInt(System.getenv().getOrDefault(name, String.valueOf(fallback)));
    }

    static Settings settings(Path state, int httpPort, int transportPort) {
        Map<String, String> env = System.getenv();
        String nodeName = env.getOrDefault("ORDERSTREAM_SEARCH_NODE_NAME", "local");
        String seeds = env.getOrDefault("ORDERSTREAM_SEARCH_SEED_HOSTS", "");
        Settings.Builder b = Settings.builder();
        if (seeds.isEmpty()) {
            b.put("discovery.type", "single-node");
        } else {
            List<String> managers = List.of(env.getOrDefault("ORDERSTREAM_SEARCH_CLUSTER_MANAGER", nodeName).split(","));
            String roles = env.getOrDefault("ORDERSTREAM_SEARCH_NODE_ROLES", "");
            b.putList("discovery.seed_hosts", List.of(seeds.split(",")))
                .putList("cluster.initial_cluster_manager_nodes", managers)
                .putList("node.roles", !roles.isEmpty()
                    ? List.of(roles.split(","))
                    : managers.contains(nodeName)
                    ? List.of("cluster_manager", "data", "ingest")
                    : List.of("data", "ingest"));
        }
        return b
            .put("cluster.name", env.getOrDefault("ORDERSTREAM_SEARCH_CLUSTER_NAME", "orderstream-local"))
            .put("node.name", nodeName)
            .put("path.home", state.toString())
            .put("path.data", state.resolve("data").toString())
            .put("path.logs", state.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // A dev box's disk may be fuller than a server's; don't let the watermarks turn
            // indices read-only or leave shards unassigned in the middle of a test run.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
    }

    /**
     * Classpath plugins get no extension loading from PluginsService (that only happens for
     * bundles in modules/ or plugins/), so hand Painless the extensions found on the classpath
     * (analysis-common's allowlist for analysis predicate scripts). Painless keeps them in a
     * static map, so this must run before the node builds its script engine.
     */
    static void loadPainlessExtensions() {
        new PainlessPlugin().loadExtensions(new ExtensiblePlugin.ExtensionLoader() {
            @Override
            public <T> List<T> loadExtensions(Class<T> type) {
                List<T> found = new ArrayList<>();
                ServiceLoader.load(type, EmbeddedNode.class.getClassLoader()).forEach(found::add);
                return found;
            }
        });
    }

    /**
     * Usage: {@code EmbeddedNode} runs the node until SIGTERM. {@code EmbeddedNode --warmup}
     * only builds a node in a throw-away directory and exits: build.sh runs it with
     * -XX:ArchiveClassesAtExit to record a class-data-sharing archive, which makes later starts
     * markedly faster on a busy machine.
     */
    public static void main(String[] args) throws Exception {
        boolean warmup = List.of(args).contains("--warmup");
        Path state = warmup ? Files.createTempDirectory("orderstream-opensearch-warmup") : stateDir();
        int httpPort = envPort("ORDERSTREAM_SEARCH_PORT", 59200);
        int transportPort = envPort("ORDERSTREAM_SEARCH_TRANSPORT_PORT", 59300);
        Path config = state.resolve("config");
        Files.createDirectories(config);
        Files.createDirectories(state.resolve("data"));
        Files.createDirectories(state.resolve("logs"));

        // Must be set before the first logger is created: log4j2.xml reads it.
        System.setProperty("orderstream.opensearch.logs", state.resolve("logs").toString());
        Logger logger = LogManager.getLogger(EmbeddedNode.class);
        loadPainlessExtensions();

        Node node;
        try {
            Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings(state, httpPort, transportPort), Map.of(), config, () -> "local");
            node = new LocalNode(environment, PLUGINS);
        } catch (Throwable t) {
            logger.error("node could not be created", t);
            LogManager.shutdown();
            System.exit(1);
            return;
        }

        if (warmup) {
            node.close();
            node.awaitClose(30, TimeUnit.SECONDS);
            LogManager.shutdown();
            try (Stream<Path> paths = Files.walk(state)) {
                paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
            System.exit(0);
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            logger.info("shutdown requested, closing node");
            try {
                node.close();
                if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                    logger.warn("node did not close within 30s");
                }
                logger.info("node closed");
            } catch (Exception e) {
                logger.error("error while closing node", e);
            } finally {
                stopped.countDown();
                LogManager.shutdown();
            }
        }, "orderstream-opensearch-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            logger.error("node failed to start", t);
            System.exit(1); // the shutdown hook closes what was started
        }
        logger.info("orderstream-local node started: http://127.0.0.1:{}", httpPort);
        stopped.await();
    }
}
