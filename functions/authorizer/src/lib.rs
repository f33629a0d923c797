//! Operator identity at the edge of the deployed API (`infra/template.yaml`).
//!
//! * `authorizer`: the HTTP API's Lambda authorizer on every `/admin/*`
//!   route but `POST /admin/login`. Only a request carrying a valid operator
//!   token gets through, so forged and shopper tokens are turned away before
//!   they cost a function invocation or a DynamoDB read. The functions still
//!   verify the token and that the operator is enabled, because API Gateway
//!   caches the authorizer's answer per token for a few minutes.
//! * `seed-admin`: creates the first operator, invoked once after a deploy.

use std::time::Duration;

use aws_lambda_events::{
    apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request},
    http::header::AUTHORIZATION,
};
use lambda_runtime::LambdaEvent;
use shared::{
    Error,
    config::{self, ConfigError},
    domain::auth::{Claims, Role, Tokens},
    http::bearer_token,
};

/// The verifier of operator tokens, keyed with the key the functions sign
/// them with (`JWT_SECRET_ARN`, read from Secrets Manager at cold start).
pub async fn tokens_from_env() -> Result<Tokens, ConfigError> {
    // The authorizer never issues tokens, so their lifetime does not matter.
    Ok(Tokens::new(config::jwt_secret().await?.0.as_bytes(), Duration::ZERO))
}

/// The operator an `Authorization` header proves, if it proves one.
pub fn operator(tokens: &Tokens, authorization: Option<&str>) -> Result<Claims, Error> {
    let claims = tokens.verify(bearer_token(authorization)?)?;
    match claims.role {
        Role::Admin => Ok(claims),
        Role::User => Err(Error::Forbidden("this route is for operators")),
    }
}

/// Answers API Gateway in the simple format (payload 2.0). An allowed
/// request carries the operator's login name to the access log as
/// `$context.authorizer.admin`.
pub async fn handler(
    tokens: &Tokens,
    event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>,
) -> Result<ApiGatewayV2CustomAuthorizerSimpleResponse, lambda_runtime::Error> {
    let request = event.payload;
    let header = request.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    match operator(tokens, header) {
        Ok(claims) => {
            response.is_authorized = true;
            response.context = serde_json::json!({ "admin": claims.sub });
        }
        Err(error) => {
            response.context = serde_json::json!({});
            tracing::info!(route = request.route_key.as_deref().unwrap_or(""), %error, "admin request denied");
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use lambda_runtime::Context;
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &[u8] = b"authorizer-test-secret-of-32-bytes!!";

    fn tokens() -> Tokens {
        Tokens::new(SECRET, Duration::from_secs(60))
    }

    fn bearer(sub: &str, role: Role) -> String {
        format!("Bearer {}", tokens().issue(sub, role, Utc::now()).token)
    }

    /// A request as API Gateway sends it to a payload-2.0 authorizer.
    fn event(authorization: Option<&str>) -> LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request> {
        let mut headers = json!({"content-type": "application/json", "user-agent": "curl/8.5.0"});
        if let Some(value) = authorization {
            headers["authorization"] = value.into();
        }
        let payload = json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/POST/admin/skus",
            "identitySource": authorization.map(|v| vec![v]),
            "routeKey": "POST /admin/skus",
            "rawPath": "/admin/skus",
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdef123",
                "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abcdef123",
                "http": {
                    "method": "POST",
                    "path": "/admin/skus",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "curl/8.5.0"
                },
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "routeKey": "POST /admin/skus",
                "stage": "$default",
                "time": "23/Nov/2026:12:00:00 +0000",
                "timeEpoch": 1_795_000_000_000_u64
            }
        });
        LambdaEvent::new(serde_json::from_value(payload).unwrap(), Context::default())
    }

    async fn answer(authorization: Option<&str>) -> Value {
        serde_json::to_value(handler(&tokens(), event(authorization)).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn lets_an_operator_through_with_their_name() {
        let reply = answer(Some(&bearer("root", Role::Admin))).await;
        assert_eq!(reply, json!({"isAuthorized": true, "context": {"admin": "root"}}));
    }

    #[tokio::test]
    async fn turns_away_everything_else() {
        let expired = format!(
            "Bearer {}",
            tokens()
                .issue("root", Role::Admin, Utc::now() - chrono::Duration::hours(1))
                .token
        );
        let forged = format!(
            "Bearer {}",
            Tokens::new(b"some-other-secret-of-at-least-32-bytes", Duration::from_secs(60))
                .issue("root", Role::Admin, Utc::now())
                .token
        );
        let admin = bearer("root", Role::Admin);
        let token_only = admin.trim_start_matches("Bearer ").to_owned();
        let denied = [
            None,
            Some(bearer("alice", Role::User)),
            Some(expired),
            Some(forged),
            Some(token_only),
            Some(format!("Basic {}", admin.trim_start_matches("Bearer "))),
            Some("Bearer ".to_owned()),
            Some("Bearer not-a-jwt".to_owned()),
        ];
        for authorization in denied {
            let reply = answer(authorization.as_deref()).await;
            assert_eq!(
                reply,
                json!({"isAuthorized": false, "context": {}}),
                "{authorization:?}"
            );
        }
    }

    #[test]
    fn refuses_a_user_token_as_forbidden_and_a_bad_one_as_unauthorized() {
        let user = bearer("alice", Role::User);
        assert!(matches!(operator(&tokens(), Some(&user)), Err(Error::Forbidden(_))));
        assert!(matches!(operator(&tokens(), None), Err(Error::Unauthorized(_))));
    }
}
