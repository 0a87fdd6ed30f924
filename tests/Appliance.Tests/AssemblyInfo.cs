// The appliance runs on Linux only (systemd, SO_PEERCRED, libc); so do its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
