//! `xrsec show ...` and `xrsec clear ...`: one request to xrsecd over its
//! control socket, and its answer printed either as the router prints it (the
//! layouts of `xrsec_control::show`) or, with `--json`, as the daemon's data
//! itself. Whatever goes wrong is one line on stderr and an exit code, so that
//! scripts can tell "the daemon is not there" (3) from "the daemon said no" (1).

use std::io::{self, Write};
use std::path::Path;

use serde_json::json;
use xrsec_control::client;
use xrsec_control::{show as layout, Request, Response, Status};

use crate::Outcome;

/// What `xrsec show` prints.
pub(crate) enum Show {
    Ikev2Session { detail: bool },
    Ikev2Summary,
    IpsecSa { interface: Option<String> },
    RunningConfig,
}

/// What `xrsec clear` deletes.
pub(crate) enum Clear {
    IkeSa { id: Option<u64> },
    IpsecSa { interface: Option<String> },
}

/// Asks for the status (or the running-config) and prints the part `what` names.
pub(crate) fn show(control: &Path, json: bool, what: Show) -> Outcome {
    let request = match what {
        Show::RunningConfig => Request::RunningConfig,
        _ => Request::Status,
    };
    let response = match ask(control, &request) {
        Ok(response) => response,
        Err(outcome) => return outcome,
    };
    match (what, response) {
        (Show::RunningConfig, Response::RunningConfig { text }) => {
            if json {
                print_json(Ok(json!({ "text": text })))
            } else {
                print_text(&text)
            }
        }
        (Show::RunningConfig, other) => unexpected(&request, &other),
        (what, Response::Status(status)) => print_status(&what, &status, json),
        (_, other) => unexpected(&request, &other),
    }
}

/// Sends the clear request and prints the daemon's sentence about it.
pub(crate) fn clear(control: &Path, json: bool, what: Clear) -> Outcome {
    let request = match what {
        Clear::IkeSa { id } => Request::ClearIkeSa { id },
        Clear::IpsecSa { interface } => Request::ClearIpsecSa { interface },
    };
    match ask(control, &request) {
        Ok(Response::Cleared { count, message }) => {
            if json {
                print_json(Ok(json!({ "count": count, "message": message })))
            } else {
                print_text(&message)
            }
        }
        Ok(other) => unexpected(&request, &other),
        Err(outcome) => outcome,
    }
}

fn print_status(what: &Show, status: &Status, json: bool) -> Outcome {
    match what {
        Show::Ikev2Session { detail } if !json => {
            print_text(&layout::ikev2_session(status, *detail))
        }
        Show::Ikev2Summary if !json => print_text(&layout::ikev2_summary(status)),
        Show::Ikev2Summary => print_json(serde_json::to_value(status.summary())),
        Show::IpsecSa { interface } if !json => {
            match layout::ipsec_sa(status, interface.as_deref()) {
                Ok(text) => print_text(&text),
                Err(message) => {
                    eprintln!("xrsec: {message}");
                    Outcome::Invalid
                }
            }
        }
        Show::IpsecSa {
            interface: Some(name),
        } => match status.tunnel(name) {
            Some(tunnel) => print_json(serde_json::to_value(tunnel)),
            None => {
                eprintln!("xrsec: {}", layout::unknown_interface(status, name));
                Outcome::Invalid
            }
        },
        _ => print_json(serde_json::to_value(status)),
    }
}

/// One request, one answer; a failure is reported here, once, and becomes
/// the outcome.
fn ask(control: &Path, request: &Request) -> Result<Response, Outcome> {
    match client::request(control, request) {
        Ok(Response::Error { message }) => {
            eprintln!("xrsecd: {message}");
            Err(Outcome::Invalid)
        }
        Ok(response) => Ok(response),
        Err(error) => {
            eprintln!("{error}");
            Err(Outcome::Unreachable)
        }
    }
}

/// An answer of the wrong kind (a daemon of another version, say).
fn unexpected(request: &Request, response: &Response) -> Outcome {
    let got = match response {
        Response::Status(_) => "a status",
        Response::RunningConfig { .. } => "a running-config",
        Response::Cleared { .. } => "a clear result",
        Response::Error { .. } => "an error",
    };
    let expected = match request {
        Request::Status => "a status",
        Request::RunningConfig => "a running-config",
        Request::ClearIkeSa { .. } | Request::ClearIpsecSa { .. } => "a clear result",
    };
    eprintln!("xrsecd answered {got} where {expected} was expected; is it another version?");
    Outcome::Unreachable
}

fn print_json(value: Result<serde_json::Value, serde_json::Error>) -> Outcome {
    match value.and_then(|v| serde_json::to_string_pretty(&v)) {
        Ok(text) => print_text(&text),
        Err(error) => {
            eprintln!("xrsec: cannot print the answer as JSON: {error}");
            Outcome::Failed
        }
    }
}

/// Writes `text` and a final newline if it lacks one. A closed pipe
/// (`xrsec show ... | head`) is not an error worth a message.
fn print_text(text: &str) -> Outcome {
    let mut stdout = io::stdout().lock();
    let mut written = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        written = written.and_then(|()| stdout.write_all(b"\n"));
    }
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => Outcome::Success,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Outcome::Success,
        Err(error) => {
            eprintln!("xrsec: cannot write the output: {error}");
            Outcome::Failed
        }
    }
}
