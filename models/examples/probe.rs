use bfp_common::{Fingerprint, Protocol::*};
fn main() {
    let m = bfp_models::embedded().unwrap();
    let cases = [
        (
            "admin 23h",
            Fingerprint {
                login_hour: 23,
                session_duration_min: 60.0,
                commands: 20,
                failed_logins: 0,
                protocol: Ssh,
                typing_speed_wpm: Some(45.0),
                risky_commands: None,
            },
        ),
        (
            "office https 10h",
            Fingerprint {
                login_hour: 10,
                session_duration_min: 30.0,
                commands: 15,
                failed_logins: 0,
                protocol: Https,
                typing_speed_wpm: Some(40.0),
                risky_commands: Some(0),
            },
        ),
        (
            "mistyper 3 fails",
            Fingerprint {
                login_hour: 10,
                session_duration_min: 30.0,
                commands: 20,
                failed_logins: 3,
                protocol: Https,
                typing_speed_wpm: Some(35.0),
                risky_commands: Some(0),
            },
        ),
        (
            "mistyper 6 fails",
            Fingerprint {
                login_hour: 9,
                session_duration_min: 25.0,
                commands: 12,
                failed_logins: 6,
                protocol: Ssh,
                typing_speed_wpm: Some(30.0),
                risky_commands: None,
            },
        ),
        (
            "slow bf 2/h day",
            Fingerprint {
                login_hour: 0,
                session_duration_min: 1440.0,
                commands: 0,
                failed_logins: 48,
                protocol: Ssh,
                typing_speed_wpm: None,
                risky_commands: Some(0),
            },
        ),
        (
            "fast bf 14h",
            Fingerprint {
                login_hour: 14,
                session_duration_min: 3.0,
                commands: 0,
                failed_logins: 200,
                protocol: Ssh,
                typing_speed_wpm: None,
                risky_commands: Some(0),
            },
        ),
        (
            "wget|sh 03h new",
            Fingerprint {
                login_hour: 3,
                session_duration_min: 4.0,
                commands: 6,
                failed_logins: 0,
                protocol: Ssh,
                typing_speed_wpm: Some(60.0),
                risky_commands: Some(2),
            },
        ),
        (
            "cron 02h",
            Fingerprint {
                login_hour: 2,
                session_duration_min: 0.5,
                commands: 10,
                failed_logins: 0,
                protocol: Ssh,
                typing_speed_wpm: Some(1200.0),
                risky_commands: Some(0),
            },
        ),
        (
            "api 8 fails tor 14h typing known",
            Fingerprint {
                login_hour: 14,
                session_duration_min: 10.0,
                commands: 12,
                failed_logins: 8,
                protocol: Tor,
                typing_speed_wpm: Some(150.0),
                risky_commands: None,
            },
        ),
        (
            "14h 8 fails SSH 150wpm",
            Fingerprint {
                login_hour: 14,
                session_duration_min: 10.0,
                commands: 12,
                failed_logins: 8,
                protocol: Ssh,
                typing_speed_wpm: Some(150.0),
                risky_commands: None,
            },
        ),
        (
            "seed-like night row",
            Fingerprint {
                login_hour: 1,
                session_duration_min: 120.0,
                commands: 30,
                failed_logins: 0,
                protocol: Https,
                typing_speed_wpm: Some(40.0),
                risky_commands: None,
            },
        ),
    ];
    for (name, fp) in cases {
        let v = m.score(&fp.features());
        let hours: String = (0..24)
            .map(|h| {
                let mut f = fp;
                f.login_hour = h;
                if m.score(&f.features()).suspicious {
                    'S'
                } else {
                    '.'
                }
            })
            .collect();
        println!(
            "{name:35} {} {:.2} hours[{hours}] top {:?}",
            v.label(),
            v.confidence,
            v.top_features(3)
                .map(|(i, c)| (bfp_common::FEATURE_NAMES[i], (c * 100.0).round() / 100.0))
                .collect::<Vec<_>>()
        );
    }
}
