// compare/async: the same job as examples/hello.c (five squares, number 3
// failing, each outcome printed in order), written with C++17 std::async,
// for the line count in the README. std::async has no pool: each task gets
// a thread of its own.
#include <cerrno>
#include <cstring>
#include <exception>
#include <future>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

// A failure with an error code, as crew_task_fail gives one.
struct task_error : std::runtime_error {
    int code;
    task_error(int code, const std::string &message)
        : std::runtime_error(message), code(code) {}
};

static int
square(int n)
{
    if (n == 3)
        throw task_error(EDOM, std::to_string(n) + " is unlucky");
    return n * n;
}

int
main()
{
    const int n = 5;
    std::vector<std::future<int>> futures;
    int failures = 0, failed = -1;

    try {
        for (int i = 0; i < n; i++)
            futures.push_back(std::async(std::launch::async, square, i));
    } catch (const std::exception &e) {
        // No thread (std::system_error) or no memory; the futures already
        // made wait for their tasks as they are destroyed.
        std::cerr << "async: " << e.what() << '\n';
        return 1;
    }
    for (int i = 0; i < n; i++) {
        try {
            int squared = futures[i].get();
            std::cout << i << " squared is " << squared << '\n';
        } catch (const task_error &e) {
            std::cout << i << " failed: error " << e.code << " ("
                      << std::strerror(e.code) << "): " << e.what() << '\n';
            failures++;
            failed = i;
        } catch (const std::exception &e) {
            std::cout << i << " failed: " << e.what() << '\n';
            failures++;
        }
    }
    if (!std::cout.flush())
        return 1;
    // One failure, at position 3, is what this program expects.
    return failures == 1 && failed == 3 ? 0 : 1;
}
