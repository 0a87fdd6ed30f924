using Appliance.Config;
using Appliance.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Appliance.Hosting;

/// <summary>`appliance run [--config FILE]`: loads and compiles the config, then runs the gateway on the Generic Host.</summary>
public static class RunCommand
{
    public static async Task<int> ExecuteAsync(string[] args)
    {
        string? configPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--config" or "-c" && i + 1 < args.Length)
            {
                configPath = args[++i];
            }
            else
            {
                Console.Error.WriteLine($"unknown option '{args[i]}'\nusage: appliance run [--config FILE]");
                return 2;
            }
        }

        TlsPolicy.Apply(); // before the config's certificates wake OpenSSL up
        ConfigSnapshot snapshot;
        try
        {
            snapshot = LoadSnapshot(configPath);
        }
        catch (ConfigException e)
        {
            foreach (ConfigError error in e.Errors)
            {
                Console.Error.WriteLine(error.ToString());
            }

            Console.Error.WriteLine("appliance: refusing to start with an invalid config");
            return 1;
        }

        ServerHeader.Configure(snapshot.ServerHeader);
        ConfigureSocketEngine(snapshot);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });
        // Under systemd when it gave us a notify socket or a journal stream; /proc/1/comm may be hidden (ProtectProc).
        bool underSystemd = Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not null
            || Environment.GetEnvironmentVariable("JOURNAL_STREAM") is not null
            || SystemdHelpers.IsSystemdService();
        var service = new ServiceManager(SystemdNotifier.FromEnvironment(), SocketActivation.FromEnvironment());
        builder.Logging.SetMinimumLevel(Environment.GetEnvironmentVariable("APPLIANCE_LOG_LEVEL") switch
        {
            "debug" => LogLevel.Debug,
            "warning" => LogLevel.Warning,
            _ => LogLevel.Information,
        });
        if (underSystemd)
        {
            // journald: one line per entry with a <N> syslog priority prefix, no colours, no timestamps.
            builder.Logging.AddSystemdConsole(o => o.IncludeScopes = false);
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            });
        }

        // Our own notifier instead of AddSystemd(): it sends only READY/STOPPING, and only when its detection works.
        builder.Services.AddSingleton(service);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = snapshot.ShutdownTimeout + TimeSpan.FromSeconds(5));
        builder.Services.AddSingleton(new ConfigSource(configPath, snapshot));
        builder.Services.AddHostedService<GatewayHost>();
        using IHost host = builder.Build();
        using SystemdNotifier notifier = service.Notifier;
        try
        {
            await host.RunAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"appliance: {e.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>
    /// Connections run on our epoll loops (server.socketEngine "epoll") or on .NET's engine ("dotnet"), with
    /// server.socketThreads event threads either way. .NET's engine still accepts connections (and, with "epoll",
    /// does nothing else, so one thread is enough). It reads these variables once, when the first socket is
    /// registered, so they are set here, before any listener exists. An operator's own environment wins.
    /// </summary>
    private static void ConfigureSocketEngine(ConfigSnapshot snapshot)
    {
        Transport.SocketEngine.Configure(snapshot.EpollSockets, snapshot.SocketThreads, snapshot.IoUringSends);
        Tls.TlsRecordStream.Enabled = snapshot.OpenSslRecords;
        Tls.TlsRecordStream.Protect = snapshot.EvpRecords;
        const string inline = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (snapshot.InlineSocketCompletions && Environment.GetEnvironmentVariable(inline) is null)
        {
            Environment.SetEnvironmentVariable(inline, "1");
        }

        const string threads = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";
        if (Environment.GetEnvironmentVariable(threads) is null)
        {
            int count = Transport.SocketEngine.UsesEpoll ? 1 : snapshot.SocketThreads;
            Environment.SetEnvironmentVariable(threads, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public static ConfigSnapshot LoadSnapshot(string? configPath)
    {
        if (configPath is null)
        {
            ApplianceConfig embedded = ConfigLoader.Parse(System.Text.Encoding.UTF8.GetBytes(EmbeddedConfig.Json));
            return ConfigCompiler.Compile(embedded, Environment.CurrentDirectory);
        }

        string full = Path.GetFullPath(configPath);
        ApplianceConfig config = ConfigLoader.LoadFile(full);
        return ConfigCompiler.Compile(config, Path.GetDirectoryName(full)!);
    }
}

/// <summary>What systemd handed the process: where to report readiness and health, and sockets to adopt.</summary>
public sealed record ServiceManager(SystemdNotifier Notifier, SocketActivation Activation);

/// <summary>Where the running config came from (null path = embedded default) and its first snapshot.</summary>
public sealed record ConfigSource(string? Path, ConfigSnapshot Initial);
