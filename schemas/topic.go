package schemas

// Settings of every topic that holds events: the events topic (created by
// producer/topic for the relay) and each consumer group's DLQ (created by
// consumers). Events are kept forever and never compacted, so that a replay
// from offset zero replays every event (read models are rebuilt that way)
// and nothing dead-lettered disappears before it is re-driven. They live in
// the contract because the producer and the consumers both write such topics
// and consumers never import the producer.
const (
	TopicRetentionMs    = "retention.ms"    // TopicForever: no age limit
	TopicRetentionBytes = "retention.bytes" // TopicForever: no size limit
	TopicCleanupPolicy  = "cleanup.policy"  // TopicDelete: no compaction
	TopicForever        = "-1"
	TopicDelete         = "delete"
)

// ReplayTopicConfigs returns the settings above as a Kafka admin client
// takes them (kadm.Client.CreateTopic): retention.ms=-1,
// retention.bytes=-1, cleanup.policy=delete. Every call returns a new map.
func ReplayTopicConfigs() map[string]*string {
	forever, del := TopicForever, TopicDelete
	return map[string]*string{TopicRetentionMs: &forever, TopicRetentionBytes: &forever, TopicCleanupPolicy: &del}
}
