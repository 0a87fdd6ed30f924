// The appliance runs on Linux only (systemd, SO_PEERCRED, libc); so do its benchmarks.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
