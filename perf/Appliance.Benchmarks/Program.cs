using BenchmarkDotNet.Running;

namespace Appliance.Benchmarks;

/// <summary>Runs the suites picked on the command line, e.g. <c>--filter *Http1Parser*</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
