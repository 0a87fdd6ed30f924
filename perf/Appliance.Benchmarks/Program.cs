using BenchmarkDotNet.Running;

namespace Appliance.Benchmarks;

/// <summary>Runs the suites picked on the command line, e.g. <c>--filter *Http1Parser*</c>.</summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length >= 2 && args[0] == "--alloc-trace")
        {
            AllocationTrace.Run(args[1], args.Length > 2 ? int.Parse(args[2]) : 100_000);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
