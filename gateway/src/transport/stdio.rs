//! `manifold stdio`: the same handler over stdin/stdout, for clients that launch the gateway as a
//! subprocess.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::handler::Gateway;

/// Serves one client on stdin/stdout until it closes stdin.
pub async fn serve(gateway: Arc<Gateway>) -> Result<(), std::io::Error> {
    let service = gateway
        .handler()
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    service.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
