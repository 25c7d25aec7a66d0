// Placeholder main: replaced by the real command line.
int main() { return 1; }
