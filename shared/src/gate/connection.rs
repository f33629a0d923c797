//! The one connection every gate call shares: a single node (ElastiCache
//! with cluster mode off, local redis-server) or a cluster.

use std::time::Duration;

use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr},
};

use crate::ports::PortError;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One connection for either a single node (ElastiCache with cluster mode
/// off, local redis-server) or a cluster. Both multiplex every request of
/// the process over one socket per node and reconnect on their own.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Connects lazily, in either mode: a cold start while Redis is down
    /// still serves the routes that do not need it, and the others answer
    /// 503 until it is back.
    pub fn open(url: &str, cluster: bool) -> Result<Self, PortError> {
        if cluster {
            let client = ClusterClient::builder([url])
                // A request waits at most this long in all, retries and
                // redirections included, so an outage is a quick 503.
                .overall_response_timeout(Some(Duration::from_secs(2)))
                .retries(2)
                .max_retry_wait(200)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT);
            Ok(RedisConnection::Cluster(
                client.get_pending_async_connection_with_config(config),
            ))
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            let client = redis::Client::open(url)?;
            Ok(RedisConnection::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }

    /// How many masters serve the keys: one for a single node, and for a
    /// cluster the distinct masters its slot ranges name.
    pub async fn masters(&mut self) -> RedisResult<u32> {
        let RedisConnection::Cluster(connection) = self else {
            return Ok(1);
        };
        let ranges: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(connection).await?;
        let mut masters = std::collections::BTreeSet::new();
        if let Value::Array(ranges) = ranges {
            for range in ranges {
                // start, end, then [ip, port, id, ...] of the master first.
                if let Value::Array(parts) = range
                    && let Some(Value::Array(master)) = parts.get(2)
                {
                    masters.insert(format!("{:?}", &master[..master.len().min(2)]));
                }
            }
        }
        Ok(u32::try_from(masters.len()).unwrap_or(u32::MAX).max(1))
    }

    /// Sends `pipeline` in one write to the master serving `key`, so that
    /// everything in it runs on one connection to one node (a script and
    /// the `WAIT` for its replication). Errors stay in their slots.
    pub async fn pipeline_at(&mut self, pipeline: Pipeline, key: &str) -> RedisResult<Vec<Value>> {
        match self {
            RedisConnection::Single(connection) => {
                let count = pipeline.len();
                connection.req_packed_commands(&pipeline, 0, count).await
            }
            RedisConnection::Cluster(connection) => {
                let count = pipeline.len();
                let master = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                connection.route_pipeline(pipeline, 0, count, master).await
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}
