//! `HelloTool`: calls Microsoft Graph `GET /v1.0/me` as the caller and greets them by name,
//! with their email (`mail`, else `userPrincipalName`).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::surface::{GraphTool, Reply, permission_values};
use super::{GraphPermission, USER_READ};
use crate::auth::Caller;
use crate::graph::{BuildError, Endpoint, Error, GraphClient};

/// The tool's name as users type it (`#HelloTool` in VS Code).
pub const NAME: &str = "HelloTool";

/// HelloTool takes no arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

/// The signed-in user's profile (`GET /v1.0/me`), the fields HelloTool uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub user_principal_name: Option<String>,
}

/// HelloTool's structured result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Greeting {
    /// The greeting shown to the user.
    pub greeting: String,
    /// The user's display name from Microsoft Graph.
    pub display_name: Option<String>,
    /// The user's email: `mail`, else `userPrincipalName`.
    pub email: Option<String>,
    /// The user's sign-in name.
    pub user_principal_name: Option<String>,
}

impl Greeting {
    fn from_profile(me: Me) -> Self {
        let email = me.mail.clone().or_else(|| me.user_principal_name.clone());
        let who = me
            .display_name
            .clone()
            .or_else(|| me.user_principal_name.clone())
            .unwrap_or_else(|| "there".to_owned());
        let greeting = match &email {
            Some(email) => format!("Hello, {who}! Your email is {email}."),
            None => format!("Hello, {who}! Your profile has no email address."),
        };
        Self {
            greeting,
            display_name: me.display_name,
            email,
            user_principal_name: me.user_principal_name,
        }
    }
}

/// Greets the signed-in user.
pub struct HelloTool {
    graph: GraphClient,
    me: Endpoint,
}

#[async_trait]
impl GraphTool for HelloTool {
    const NAME: &'static str = NAME;
    const TITLE: &'static str = "Hello";
    const DESCRIPTION: &'static str = "Greets the signed-in user by name and shows their email address, read from their Microsoft 365 profile (Microsoft Graph /me) on their behalf.";
    const PERMISSIONS: &'static [GraphPermission] = &[USER_READ];
    type Args = NoArguments;
    type Output = Greeting;

    fn build(graph: &GraphClient) -> Result<Self, BuildError> {
        let me = graph.endpoint("/v1.0/me", &permission_values(Self::PERMISSIONS))?;
        Ok(Self {
            graph: graph.clone(),
            me,
        })
    }

    async fn run(&self, caller: &Caller, _: NoArguments) -> Result<Reply<Greeting>, Error> {
        let me: Me = self.graph.get(caller, &self.me, &[], &[]).await?;
        let output = Greeting::from_profile(me);
        Ok(Reply {
            text: output.greeting.clone(),
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(mail: Option<&str>, upn: Option<&str>) -> Me {
        Me {
            display_name: Some("Ada Lovelace".into()),
            mail: mail.map(Into::into),
            user_principal_name: upn.map(Into::into),
        }
    }

    #[test]
    fn greeting_prefers_mail_then_upn() {
        let g = Greeting::from_profile(me(
            Some("ada@contoso.com"),
            Some("ada@contoso.onmicrosoft.com"),
        ));
        assert_eq!(g.email.as_deref(), Some("ada@contoso.com"));
        assert_eq!(
            g.greeting,
            "Hello, Ada Lovelace! Your email is ada@contoso.com."
        );
        let g = Greeting::from_profile(me(None, Some("ada@contoso.onmicrosoft.com")));
        assert_eq!(g.email.as_deref(), Some("ada@contoso.onmicrosoft.com"));
    }
}
