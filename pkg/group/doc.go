// Package group is jobctl's consumer-group membership: it joins a Kafka
// consumer group for one topic, keeps the member alive with heartbeats,
// decides (when it leads the group) which member owns which partition, and
// tells a Handler which partitions it gained, must give back, or lost.
//
// It is built on kafka-go's low-level kafka.Client requests (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, OffsetFetch, OffsetCommit); the
// client's Transport finds the group coordinator for each group request.
// kafka-go's own ConsumerGroup cannot be used because it sends no
// group.instance.id and stops heartbeating as soon as a generation ends,
// while jobctl must keep the membership alive as long as jobs on revoked
// partitions are still finishing.
//
// Why static membership (KIP-345): a worker restarted with the same
// InstanceID within the session timeout takes over its old member slot.
// When the coordinator can hand it the stored assignment, nothing moves
// and the other members keep working undisturbed. Kafka rebalances anyway
// when the restarted member was the group leader, because kafka-go speaks
// JoinGroup v7 and the "skip assignment" answer needs v9; kfake also
// rebalances when the rejoin's subscription bytes differ from the last
// ones. Both cases are cheap here: the rebalance is cooperative and the
// assignment sticky, so only the restarted member's own partitions are
// handed (back) to it.
//
// Why cooperative rebalancing: with the eager protocol every member stops
// all work at every rebalance. Here a member rejoins at once when a
// rebalance starts and keeps running its partitions meanwhile. The leader
// (see assign) keeps every member's partitions up to its fair share; a
// partition that has to move is assigned to nobody in that round, so its
// owner is told to revoke it (Handler.Revoked: finish running jobs, commit)
// and then rejoins, which starts a follow-up rebalance that gives the
// partition to its new owner. No partition is ever run by two members at
// once, a newcomer does not stall the others, and since assignments only
// change when membership or the partition count does, there is no
// rebalance storm. Each member's subscription carries the partitions it
// owns (kafka-go's OwnedPartitions) and, in its user data, the generation
// it got them in (on a conflicting claim the higher generation wins) and
// the partition count it saw: a member that sees the topic grow rejoins
// with changed subscription bytes, which makes the coordinator rebalance.
//
// Heartbeats run in their own goroutine for the whole membership, also
// while Handler.Revoked waits for jobs to finish. If heartbeats stop
// succeeding for a session timeout, or the coordinator answers that the
// member or its generation is unknown, the session is lost: the member
// calls Handler.Lost (work stops, nothing is committed) and joins afresh.
package group
