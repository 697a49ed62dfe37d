//! OTLP trace receivers for the tests: OTLP/HTTP (protobuf, as an OpenTelemetry Collector
//! serves it on 4318) and OTLP/gRPC (the collector's `TraceService` on tonic, as the
//! Container Apps managed OpenTelemetry agent serves it on 4317).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// Every export request received, in order.
pub type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// A minimal OTLP/HTTP traces receiver.
pub async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    async fn traces(State(r): State<Received>, body: Bytes) -> Vec<u8> {
        if let Ok(req) = ExportTraceServiceRequest::decode(body) {
            r.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(req);
        }
        Vec::new()
    }
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received)
}

/// A real OTLP/gRPC receiver: the collector's `TraceService` on tonic, as the Container Apps
/// managed OpenTelemetry agent serves it on port 4317.
pub async fn grpc_receiver() -> (String, Received) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    struct Collector(Received);
    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gRPC receiver");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let service = TraceServiceServer::new(Collector(received.clone()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (url, received)
}
