//! The one connection every gate call shares: a single node (ElastiCache
//! with cluster mode off, local redis-server) or a cluster.

use std::time::Duration;

use redis::{
    Cmd, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::ports::PortError;

/// One connection for either a single node (ElastiCache with cluster mode
/// off, local redis-server) or a cluster. Both multiplex every request of
/// the process over one socket per node and reconnect on their own.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Connects lazily: a cold start while Redis is down still serves the
    /// routes that do not need it, and grabs answer 503 until it is back.
    pub async fn open(url: &str, cluster: bool) -> Result<Self, PortError> {
        if cluster {
            let client = ClusterClient::builder([url])
                .connection_timeout(Duration::from_millis(500))
                .response_timeout(Duration::from_secs(1))
                .build()?;
            Ok(RedisConnection::Cluster(client.get_async_connection().await?))
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            let client = redis::Client::open(url)?;
            Ok(RedisConnection::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
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
