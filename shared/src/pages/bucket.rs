//! The pages in S3: the cloud's pages bucket, private, which CloudFront
//! reads through origin access control and serves at `/items/…` beside the
//! console.

use aws_sdk_s3::{error::DisplayErrorContext, primitives::ByteStream};

use crate::{
    model::Sku,
    pages::{item_key, render_item},
    ports::{PageStore, PortError, PortResult},
};

/// How long CloudFront and browsers keep a page before asking the bucket
/// again: an edit shows within a minute. Nothing on the page goes stale in
/// that time that the shopper relies on: the window, state and stock come
/// from the stock document, read live.
pub const PAGE_CACHE_CONTROL: &str = "public, max-age=60";

#[derive(Debug, Clone)]
pub struct BucketPages {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The shop's address the pages link to: `/`, as the console is the
    /// root of the same distribution.
    shop: String,
}

impl BucketPages {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, shop: impl Into<String>) -> Self {
        BucketPages {
            client,
            bucket: bucket.into(),
            shop: shop.into(),
        }
    }
}

fn unavailable(error: impl std::error::Error) -> PortError {
    PortError::Unavailable(format!("the pages bucket: {}", DisplayErrorContext(error)))
}

impl PageStore for BucketPages {
    /// A put replaces the object whole: a reader gets the old page or the
    /// new one.
    async fn put_item_page(&self, sku: &Sku) -> PortResult<()> {
        let html = render_item(sku, &self.shop)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(item_key(&sku.id))
            .content_type("text/html; charset=utf-8")
            .cache_control(PAGE_CACHE_CONTROL)
            .body(ByteStream::from(html.into_bytes()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deleting a page that is not there succeeds, as S3 answers.
    async fn remove_item_page(&self, sku_id: &str) -> PortResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(item_key(sku_id))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
